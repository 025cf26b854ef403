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

# Answers in UTF-8 (error texts may be in the display language) through a writer of our own:
# setting [Console]::OutputEncoding would change the code page of the console this process
# shares with the program and the user's shell.
$out = [System.IO.StreamWriter]::new([Console]::OpenStandardOutput(), [System.Text.UTF8Encoding]::new($false))
$out.AutoFlush = $true

function Send-Answer([string[]]$Fields) {
  $clean = foreach ($field in $Fields) { $field -replace '[\t\r\n]+', ' ' }
  $out.WriteLine('GIAT' + $tab + ($clean -join $tab))
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
# Hex literals are Int32 in both versions, as HResult is.
function Get-FailureCode($Exception) {
  $hr = (Get-Cause $Exception).HResult
  # NTE_BAD_KEYSET, E_ACCESSDENIED, NTE_PERM
  if ($hr -eq 0x80090016 -or $hr -eq 0x80070005 -or $hr -eq 0x80090010) { return 'CERT_KEY_ACCESS' }
  # ERROR_CANCELLED, SCARD_W_CANCELLED_BY_USER, NTE_SILENT_CONTEXT (a prompt was needed)
  if ($hr -eq 0x800704C7 -or $hr -eq 0x8010006E -or $hr -eq 0x80090022) { return 'CERT_SIGN_CANCELLED' }
  return 'CERT_SIGN_FAILED'
}

# True when a provider says it cannot do PSS: NTE_NOT_SUPPORTED, NTE_INVALID_PARAMETER,
# NTE_BAD_FLAGS, or .NET's own "padding mode not valid", which carries no Windows number but
# the default of a CryptographicException (CORSEC_E_CRYPTO on .NET Framework, 0x80131501 on
# .NET). Anything else (a wrong PIN, a removed card) must not be retried with another prompt.
function Test-PssRefusal($Exception) {
  $hr = (Get-Cause $Exception).HResult
  return ($hr -eq 0x80090029 -or $hr -eq 0x80090027 -or $hr -eq 0x80090009 -or
    $hr -eq 0x80131430 -or $hr -eq 0x80131501)
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
  $unusable = $null
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
        $state = Get-KeyState $cert
        $answer = @('found', $storePath, [Convert]::ToBase64String($cert.RawData), $state)
        if ($state -eq 'rsa') {
          Send-Answer $answer
          return
        }
        # A copy without a usable key: another store may hold one with its key.
        if ($null -eq $unusable) { $unusable = $answer }
      }
      $searched += $storePath
    } catch {
      # A store that does not exist yet is an empty store.
      $searched += ($storePath + ' (' + (Get-Cause $_.Exception).Message + ')')
    } finally {
      if ($null -ne $store) { $store.Close() }
    }
  }
  if ($null -ne $unusable) {
    Send-Answer $unusable
    return
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
    $code = Get-FailureCode $cause
    # .NET Framework hides why a CNG key could not be opened and then fails with
    # NTE_BAD_PROV_TYPE through the legacy API: for a LocalMachine key that is a missing grant.
    if ($cause.HResult -eq 0x80090014) { $code = 'CERT_KEY_ACCESS' }
    return 'inaccessible:' + $code + ':' + (Get-Account) + ':' + $cause.Message
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
      if (Test-PssRefusal $_.Exception) {
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

# Never use $input in this script: the host would then read standard input itself.
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
