# Certificate-store signer for Get-IMAPAccessToken (src/auth/store_signer.ts starts it).
# The private key of a certificate in the store often cannot be exported, so the program
# builds the client assertion and only its signature is made here, where the key lives.
# Must run unchanged on Windows PowerShell 5.1 and PowerShell 7 (store_signer_test.ts walks
# the syntax tree for 7-only constructs). Uses only .NET and the language, no module cmdlets:
# loading a module costs PowerShell 5.1 a noticeable part of a second.
#
# Requests on standard input, one per line, fields separated by TAB; one answer line each on
# standard output, starting with "GIAT" and a TAB (anything else PowerShell prints is noise):
#   find <THUMBPRINT> <Location\Name,...>  ->  found <store> <base64 DER> <key state>
#                                               missing <what was searched, '; '-separated>
#   sign <PS256|RS256> <base64 data>        ->  signature <base64> | pss-refused
# Failures answer "error <CODE> <text>". The key and the signed data never leave this script.
# End of input ends the script.

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$tab = [string][char]9

if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
  # Method calls are what ConstrainedLanguage forbids, so this answer uses none.
  'GIAT' + $tab + 'error' + $tab + 'POWERSHELL_CONSTRAINED' + $tab +
  [string]$ExecutionContext.SessionState.LanguageMode
  exit 3
}

# Error texts may be in the display language; UTF-8 keeps their letters. Without a console
# (output redirected) Windows PowerShell may refuse the setting, which then does not matter.
try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) } catch { }

function Send-Answer([string[]]$Fields) {
  $clean = foreach ($field in $Fields) { $field -replace '[\t\r\n]+', ' ' }
  [Console]::Out.WriteLine('GIAT' + $tab + ($clean -join $tab))
  [Console]::Out.Flush()
}

function Get-Account {
  if ([Environment]::OSVersion.Platform -eq [PlatformID]::Win32NT) {
    return [Security.Principal.WindowsIdentity]::GetCurrent().Name
  }
  return [Environment]::UserName
}

# The .NET exception behind PowerShell's "Exception calling ... with ... argument(s)" wrapper.
function Get-Cause($Exception) {
  while ($Exception -is [System.Management.Automation.MethodInvocationException] -and
    $null -ne $Exception.InnerException) {
    $Exception = $Exception.InnerException
  }
  return $Exception
}

# Windows' error numbers say what happened in every display language; messages do not.
function Get-FailureCode($Exception) {
  $Exception = Get-Cause $Exception
  # Hex literals are Int32 in both versions, as HResult is.
  $hr = $Exception.HResult
  if ($hr -eq 0x80090016 -or $hr -eq 0x80070005 -or $hr -eq 0x8009000D) { return 'CERT_KEY_ACCESS' }
  if ($hr -eq 0x800704C7 -or $hr -eq 0x8010006E -or $hr -eq 0x80090022) { return 'CERT_SIGN_CANCELLED' }
  return 'CERT_SIGN_FAILED'
}

function Send-Failure($Exception) {
  $code = Get-FailureCode $Exception
  $text = (Get-Cause $Exception).Message
  if ($code -eq 'CERT_KEY_ACCESS') { $text = (Get-Account) + ': ' + $text }
  Send-Answer @('error', $code, $text)
}

$script:key = $null

function Find-Certificate([string]$Thumbprint, [string]$StoreList) {
  $searched = @()
  foreach ($storePath in $StoreList.Split(',')) {
    $parts = $storePath.Split('\')
    $store = $null
    try {
      $store = [System.Security.Cryptography.X509Certificates.X509Store]::new($parts[1], $parts[0])
      $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]'ReadOnly, OpenExistingOnly')
      $found = $store.Certificates.Find(
        [System.Security.Cryptography.X509Certificates.X509FindType]::FindByThumbprint, $Thumbprint, $false)
      if ($found.Count -gt 0) {
        $cert = $found[0]
        Send-Answer @('found', $storePath, [Convert]::ToBase64String($cert.RawData), (Get-KeyState $cert))
        return
      }
      $searched += $storePath
    } catch {
      # A store that does not exist yet is an empty store.
      $searched += ($storePath + ' (' + (Get-Cause $_.Exception).Message + ')')
    } finally {
      if ($null -ne $store) { $store.Close() }
    }
  }
  Send-Answer @('missing', ($searched -join '; '))
}

# "rsa" when the key can sign; otherwise what is wrong: none, the key's algorithm, or
# inaccessible:<account>:<reason>.
function Get-KeyState($Cert) {
  if (-not $Cert.HasPrivateKey) { return 'none' }
  if ($Cert.PublicKey.Oid.Value -ne '1.2.840.113549.1.1.1') {
    $name = $Cert.PublicKey.Oid.FriendlyName
    if (-not $name) { $name = $Cert.PublicKey.Oid.Value }
    return 'algorithm:' + $name
  }
  try {
    $script:key = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Cert)
  } catch {
    $cause = Get-Cause $_.Exception
    return 'inaccessible:' + (Get-FailureCode $cause) + ':' + (Get-Account) + ':' + $cause.Message
  }
  if ($null -eq $script:key) { return 'none' }
  return 'rsa'
}

function Invoke-Signing([string]$Algorithm, [string]$Data) {
  if ($null -eq $script:key) {
    Send-Answer @('error', 'CERT_SIGN_FAILED', 'no key was opened')
    return
  }
  $bytes = [Convert]::FromBase64String($Data)
  $sha256 = [System.Security.Cryptography.HashAlgorithmName]::SHA256
  if ($Algorithm -eq 'PS256') {
    # Legacy CryptoAPI (CSP) keys cannot sign with PSS padding; the caller falls back to RS256.
    if ($script:key -is [System.Security.Cryptography.RSACryptoServiceProvider]) {
      Send-Answer @('pss-refused', 'CryptoAPI key')
      return
    }
    try {
      if ($env:GET_IMAPACCESSTOKEN_SIGNER_TEST -eq 'refuse-pss') {
        # Test switch: behave like a provider without PSS (the exception such a provider throws).
        throw [System.Security.Cryptography.CryptographicException]::new(
          'Specified padding mode is not valid for this algorithm.')
      }
      $signature = $script:key.SignData($bytes, $sha256, [System.Security.Cryptography.RSASignaturePadding]::Pss)
    } catch [System.Security.Cryptography.CryptographicException] {
      if ((Get-FailureCode $_.Exception) -eq 'CERT_SIGN_FAILED') {
        Send-Answer @('pss-refused', (Get-Cause $_.Exception).Message)
      } else {
        Send-Failure $_.Exception
      }
      return
    } catch {
      Send-Failure $_.Exception
      return
    }
  } else {
    try {
      $signature = $script:key.SignData($bytes, $sha256, [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    } catch {
      Send-Failure $_.Exception
      return
    }
  }
  Send-Answer @('signature', [Convert]::ToBase64String($signature))
}

while ($true) {
  $line = [Console]::In.ReadLine()
  if ($null -eq $line) { break }
  $request = $line.Split([char]9)
  try {
    switch ($request[0]) {
      'find' { Find-Certificate $request[1] $request[2] }
      'sign' { Invoke-Signing $request[1] $request[2] }
      default { Send-Answer @('error', 'CERT_SIGN_FAILED', 'unknown request') }
    }
  } catch {
    Send-Failure $_.Exception
  }
}
