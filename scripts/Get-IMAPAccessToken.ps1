<#
.SYNOPSIS
Drop-in replacement for Get-IMAPAccessToken.ps1: tests OAuth2 (XOAUTH2) logins to Exchange Online
over IMAP or POP3.

.DESCRIPTION
This script only forwards its parameters to the Get-IMAPAccessToken program, which does the work on
Windows, Linux and macOS without MSAL.PS. It has the original script's parameters and parameter
sets, plus the program's new ones, so existing calls keep working. The program's exit code ends up
in $LASTEXITCODE (0 = success; see the README for the others).

The program is looked for beside this script: first in the folder named after this machine's
platform (for example x86_64-pc-windows-msvc\Get-IMAPAccessToken.exe), then directly beside it.
The environment variable GET_IMAP_ACCESS_TOKEN_COMMAND names another command to run instead, for
example "deno run -A /path/src/main.ts". Its words are separated by spaces; '...' or "..." keep
spaces together; nothing in it is expanded.

Pipeline input becomes the program's standard input:
    $secret | .\Get-IMAPAccessToken.ps1 -clientsecret - ...

.EXAMPLE
PS> .\Get-IMAPAccessToken.ps1 -tenantID "<tenantID>" -clientId "<clientID>" -clientsecret "<clientsecret>" -targetMailbox "<targetMailbox>" -Verbose

.EXAMPLE
PS> .\Get-IMAPAccessToken.ps1 -tenantID "<tenantID>" -clientId "<clientID>" -clientcertificate .\app.pfx -CertificatePassword "<pw>" -targetMailbox "<targetMailbox>" -Protocol POP3

.EXAMPLE
PS> .\Get-IMAPAccessToken.ps1 -tenantID "<tenantID>" -clientId "<clientID>" -redirectUri "https://localhost" -LoginHint "user@contoso.com" -SharedMailbox "shared@contoso.com"

.EXAMPLE
PS> .\Get-IMAPAccessToken.ps1 -tenantID "<tenantID>" -clientId "<clientID>" -DeviceCode

.EXAMPLE
PS> .\Get-IMAPAccessToken.ps1 -Bridge C:\ProgramData\Get-IMAPAccessToken\bridge.json
#>
[CmdletBinding()]
param (
    # The original script's parameters, sets and mandatory rules (-targetMailbox now also takes a
    # list: -targetMailbox a@contoso.com,b@contoso.com).
    # Mandatory in every sign-in set; the bridge's sets take them from their configuration file.
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsSecret')]
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsCertificate')]
    [Parameter(Mandatory = $true, ParameterSetName = 'authorizationcode')]
    [Parameter(Mandatory = $true, ParameterSetName = 'devicecode')]
    [string]$tenantID,
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsSecret')]
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsCertificate')]
    [Parameter(Mandatory = $true, ParameterSetName = 'authorizationcode')]
    [Parameter(Mandatory = $true, ParameterSetName = 'devicecode')]
    [string]$clientId,
    [Parameter(Mandatory = $true, ParameterSetName = 'authorizationcode')][string]$redirectUri,
    [Parameter(Mandatory = $true, ParameterSetName = 'authorizationcode')]
    [Parameter(ParameterSetName = 'devicecode')]
    [string]$LoginHint,
    [Parameter(ParameterSetName = 'authorizationcode')]
    [Parameter(ParameterSetName = 'devicecode')]
    [string]$SharedMailbox,
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsSecret')][string]$clientsecret,
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsCertificate')][string]$clientcertificate,
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsSecret')]
    [Parameter(Mandatory = $true, ParameterSetName = 'clientcredentialsCertificate')]
    [string[]]$targetMailbox,

    # New parameters, in the order of the program's parameter table (src/cli/parameters.ts).
    [Parameter(ParameterSetName = 'clientcredentialsSecret')]
    [Parameter(ParameterSetName = 'clientcredentialsCertificate')]
    [string]$MailboxFile,
    [Parameter(ParameterSetName = 'clientcredentialsSecret')]
    [Parameter(ParameterSetName = 'clientcredentialsCertificate')]
    [int]$ThrottleLimit,
    [Parameter(Mandatory = $true, ParameterSetName = 'devicecode')][switch]$DeviceCode,
    [Parameter(ParameterSetName = 'authorizationcode')]
    [Parameter(ParameterSetName = 'devicecode')]
    [string[]]$Scopes,
    [ValidateSet('IMAP', 'POP3', 'POP', 'SMTP')][string]$Protocol,
    [ValidateSet('Global', 'USGov', 'USGovDoD', 'China')][string]$Cloud,
    [string]$SendTestMessageTo,
    [string]$Proxy,
    [string]$Server,
    [int]$Port,
    [string]$AuthorityHost,
    [string]$CaFile,
    [ValidateSet('Text', 'Json', 'Token', 'Sasl')][string]$OutputFormat,
    [switch]$NoConnect,
    [Parameter(ParameterSetName = 'clientcredentialsCertificate')][AllowEmptyString()][string]$CertificatePassword,
    [Parameter(ParameterSetName = 'clientcredentialsCertificate')][string]$CertificateKeyFile,
    [double]$TimeoutSeconds,
    [string]$TokenCachePath,
    [switch]$NoTokenCache,
    [switch]$Diagnose,
    [ValidateSet('en', 'de')][string]$Language,
    # Bridge mode (README: Bridge for software without OAuth).
    [Parameter(Mandatory = $true, ParameterSetName = 'bridge')][string]$Bridge,
    [Parameter(Mandatory = $true, ParameterSetName = 'bridgePasswordHash')][switch]$BridgePasswordHash,

    # Not the program's: an advanced script only accepts pipeline input through a parameter. What
    # arrives here is written to the program's standard input.
    [Parameter(ValueFromPipeline = $true, DontShow = $true)][object]$InputObject
)

begin {
    $pipelineInput = @()
}

process {
    if ($PSCmdlet.MyInvocation.ExpectingInput) { $pipelineInput += , $InputObject }
}

end {
    # Start-up time matters (this runs before every mail fetch). PowerShell compiles (JIT) each
    # construct, cmdlet, .NET member and kind of pipeline a script uses the first time, at every
    # start, so the way to the program is kept short: no cmdlets, one pipeline, as few .NET calls
    # and type names as possible (error paths aside). What it still costs, and the floor under
    # any script with this param() block, is measured by `deno task bench` (shim overhead).

    # Write-Host without Write-Host: an information record tagged PSHOST, shown by the host and
    # captured or silenced like Write-Host (6>&1, 6>$null, $InformationPreference).
    $cmdlet = $PSCmdlet
    function Write-HostLine([string]$Text, $Color) {
        $message = [System.Management.Automation.HostInformationMessage]::new()
        $message.Message = $Text
        if ($null -ne $Color) { $message.ForegroundColor = $Color }
        $cmdlet.WriteInformation($message, [string[]]@('PSHOST'))
    }

    # The command to run: GET_IMAP_ACCESS_TOKEN_COMMAND, or the program beside this script in
    # the folder named after this platform's deno compile target, or directly beside it.
    $command = @()
    $override = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
    if ($override) {
        # Words separated by whitespace; '...' and "..." group literally; nothing is expanded
        # (backslashes are ordinary characters, so Windows paths need no escaping).
        $word = ''
        $inWord = $false
        $quote = ''
        foreach ($c in [char[]]$override) {
            if ($quote) {
                if ($c -eq $quote) { $quote = '' } else { $word += $c }
            } elseif ($c -eq '"' -or $c -eq "'") {
                $quote = [string]$c
                $inWord = $true
            } elseif ($c -match '\s') {
                if ($inWord) { $command += $word; $word = ''; $inWord = $false }
            } else {
                $word += $c
                $inWord = $true
            }
        }
        if ($quote) {
            Write-HostLine "ERROR: GET_IMAP_ACCESS_TOKEN_COMMAND has an unclosed $quote quote." ([ConsoleColor]::Red)
            exit 1
        }
        if ($inWord) { $command += $word }
    }
    if ($command.Count -eq 0) {
        # $PSEdition is 'Desktop' in Windows PowerShell 5.1, which only runs on Windows (and has
        # no $IsWindows). Windows on ARM runs the x64 build emulated; there is no native one.
        if ($PSEdition -ne 'Core' -or $IsWindows) {
            $target = 'x86_64-pc-windows-msvc'
            $name = 'Get-IMAPAccessToken.exe'
            $separator = '\'
        } else {
            $arch = [string][System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture
            $cpu = if ($arch -eq 'X64') { 'x86_64' } elseif ($arch -eq 'Arm64') { 'aarch64' } else { $null }
            if ($null -eq $cpu) {
                Write-HostLine "ERROR: there is no Get-IMAPAccessToken build for this CPU ($arch)." ([ConsoleColor]::Red)
                exit 1
            }
            $target = if ($IsMacOS) { "$cpu-apple-darwin" } else { "$cpu-unknown-linux-gnu" }
            $name = 'Get-IMAPAccessToken'
            $separator = '/'
        }
        $candidates = "$PSScriptRoot$separator$target$separator$name", "$PSScriptRoot$separator$name"
        foreach ($candidate in $candidates) {
            if ([System.IO.File]::Exists($candidate)) { $command = , $candidate; break }
        }
        if ($command.Count -eq 0) {
            Write-HostLine ("ERROR: the Get-IMAPAccessToken program for $target was not found (looked for " +
                ($candidates -join ' and ') + "). Copy the folder $target from the release next to " +
                'this script, or set GET_IMAP_ACCESS_TOKEN_COMMAND to the command to run.') ([ConsoleColor]::Red)
            exit 1
        }
    }

    # The program's arguments: exactly the parameters that were bound, each as one -Name:value
    # argument, so that a value that looks like a parameter (a secret starting with '-') stays
    # a value. PowerShell has already applied its common parameters except -Verbose; numbers
    # become text in the invariant culture (2.5 stays "2.5" in a German session).
    $common = [System.Management.Automation.Cmdlet]::CommonParameters +
    [System.Management.Automation.Cmdlet]::OptionalCommonParameters
    $verbose = $null
    $argv = @(
        if ($command.Count -gt 1) { $command[1..($command.Count - 1)] }
        foreach ($name in $PSBoundParameters.Keys) {
            $value = $PSBoundParameters[$name]
            if ($name -eq 'Verbose') { $verbose = $value; continue }
            if ($name -eq 'InputObject' -or $common -contains $name) { continue }
            if ($value -is [switch]) {
                if ($value) { "-$name" } else { "-${name}:`$false" }
            } elseif ($value -is [array]) {
                # -Scopes a,b and -targetMailbox a,b arrive as arrays; the program takes one
                # comma-separated value.
                "-${name}:" + ($value -join ',')
            } else {
                "-${name}:$value"
            }
        }
        # The original also showed its verbose text when the caller had set
        # $VerbosePreference = 'Continue'; -Verbose:$false wins over that.
        if ($null -ne $verbose) {
            if ($verbose) { '-Verbose' } else { '-Verbose:$false' }
        } elseif ($VerbosePreference -eq 'Continue') {
            '-Verbose'
        }
    )

    if ($null -ne $ExecutionContext.SessionState.PSVariable.Get('PSNativeCommandArgumentPassing')) {
        # PowerShell 7.3+: every argument is passed as is, empty strings included.
        $PSNativeCommandArgumentPassing = 'Standard'
    } else {
        # Windows PowerShell 5.1 and PowerShell before 7.3 join arguments into one command line
        # without escaping quotes, and drop empty strings. Quoting every argument by the rules
        # programs use to split a Windows command line makes them arrive intact: backslashes
        # before a quote are doubled and the quote escaped; so are trailing backslashes.
        function ConvertTo-LegacyArgument([string]$Value) {
            $escaped = [regex]::Replace($Value, '(\\*)"', { param($m) ($m.Groups[1].Value * 2) + '\"' })
            $escaped = [regex]::Replace($escaped, '(\\+)$', { param($m) $m.Groups[1].Value * 2 })
            return '"' + $escaped + '"'
        }
        $argv = @(foreach ($arg in $argv) { ConvertTo-LegacyArgument $arg })
    }

    # The program reads and writes UTF-8. Windows PowerShell would otherwise send pipeline input
    # as ASCII; PowerShell reads the program's output in the console's encoding (the code page on
    # Windows).
    $consoleEncoding = $null
    try {
        if ([Console]::OutputEncoding.CodePage -ne 65001) {
            $consoleEncoding = [Console]::OutputEncoding
            [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)
        }
    } catch {
        $consoleEncoding = $null # no console (e.g. a service): nothing to decode with anyway
    }

    # The program tags its lines (GET_IMAPACCESSTOKEN_STREAMS=1) with the stream the original
    # script used: O output (the server's lines: this script's output), I progress and prompts
    # (Write-Host), W warnings (Write-Host, yellow), E errors and their advice (Write-Host, red),
    # V verbose (Write-Verbose). Each line is passed on as it arrives, in order.
    $toStreams = {
        process {
            if ($_.Length -lt 2 -or $_[1] -ne ' ') { $_ } # untagged (an older program): output
            elseif ($_[0] -eq 'O') { $_.Substring(2) }
            elseif ($_[0] -eq 'I') { Write-HostLine $_.Substring(2) $null }
            elseif ($_[0] -eq 'W') { Write-HostLine $_.Substring(2) ([ConsoleColor]::Yellow) }
            elseif ($_[0] -eq 'E') { Write-HostLine $_.Substring(2) ([ConsoleColor]::Red) }
            elseif ($_[0] -eq 'V') { $cmdlet.WriteVerbose($_.Substring(2)) }
            else { $_ }
        }
    }
    $exe = $command[0]
    $streams = $env:GET_IMAPACCESSTOKEN_STREAMS
    $env:GET_IMAPACCESSTOKEN_STREAMS = '1'
    try {
        if ($PSCmdlet.MyInvocation.ExpectingInput) {
            $OutputEncoding = [System.Text.UTF8Encoding]::new($false)
            $pipelineInput | & $exe @argv | & $toStreams
        } else {
            & $exe @argv | & $toStreams
        }
    } catch [System.Management.Automation.CommandNotFoundException],
    [System.Management.Automation.ApplicationFailedException] {
        # Not found or not executable: no exit code to pass on.
        $reason = ($_.Exception.Message -split '\r?\n')[0]
        Write-HostLine "ERROR: cannot run ${exe}: $reason" ([ConsoleColor]::Red)
        exit 1
    } finally {
        $env:GET_IMAPACCESSTOKEN_STREAMS = $streams
        if ($null -ne $consoleEncoding) { [Console]::OutputEncoding = $consoleEncoding }
    }
    # The program's exit code becomes the caller's $LASTEXITCODE (and pwsh -File's exit code).
    exit $LASTEXITCODE
}
