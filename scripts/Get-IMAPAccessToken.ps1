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
    $pipelineInput = [System.Collections.Generic.List[object]]::new()

    # Write-Host without Write-Host: the cmdlet lives in a module whose loading costs PowerShell a
    # noticeable part of a second. This is what Write-Host does: an information record tagged
    # PSHOST, shown by the host and captured or silenced like Write-Host (6>&1, 6>$null).
    function Write-HostLine($Cmdlet, [string]$Text, $Color) {
        $message = [System.Management.Automation.HostInformationMessage]::new()
        $message.Message = $Text
        if ($null -ne $Color) { $message.ForegroundColor = $Color }
        $Cmdlet.WriteInformation($message, [string[]]@('PSHOST'))
    }

    function Write-ShimError([string]$Message) {
        # Same shape and stream as the program's own errors, so scripts and logs see one format.
        Write-HostLine $PSCmdlet "ERROR: $Message" ([ConsoleColor]::Red)
    }

    # The program's lines, tagged by it (GET_IMAPACCESSTOKEN_STREAMS=1) with the stream the
    # original script used: O output (the server's lines: this script's output), I progress and
    # prompts (Write-Host), W warnings (Write-Host, yellow), E errors and their advice
    # (Write-Host, red), V verbose (Write-Verbose). A pipeline function keeps them in order and
    # passes each on as it arrives.
    function Write-ToolLine($Cmdlet) {
        process {
            $line = [string]$_
            $text = if ($line.Length -ge 2) { $line.Substring(2) } else { '' }
            switch ($line[0]) {
                'O' { $text }
                'I' { Write-HostLine $Cmdlet $text $null }
                'W' { Write-HostLine $Cmdlet $text ([ConsoleColor]::Yellow) }
                'E' { Write-HostLine $Cmdlet $text ([ConsoleColor]::Red) }
                'V' { $Cmdlet.WriteVerbose($text) }
                # An untagged line (an older program): output, as before.
                default { $line }
            }
        }
    }

    # Splits GET_IMAP_ACCESS_TOKEN_COMMAND into words without evaluating anything: whitespace
    # separates words, '...' and "..." group literally (backslashes are ordinary characters, so
    # Windows paths need no escaping).
    function Split-CommandLine([string]$Text) {
        $words = [System.Collections.Generic.List[string]]::new()
        $word = [System.Text.StringBuilder]::new()
        $inWord = $false
        $quote = $null
        foreach ($c in $Text.ToCharArray()) {
            if ($null -ne $quote) {
                if ($c -eq $quote) { $quote = $null } else { [void]$word.Append($c) }
            } elseif ($c -eq [char]'"' -or $c -eq [char]"'") {
                $quote = $c
                $inWord = $true
            } elseif ([char]::IsWhiteSpace($c)) {
                if ($inWord) { $words.Add($word.ToString()); [void]$word.Clear(); $inWord = $false }
            } else {
                [void]$word.Append($c)
                $inWord = $true
            }
        }
        if ($null -ne $quote) { throw "GET_IMAP_ACCESS_TOKEN_COMMAND has an unclosed $quote quote." }
        if ($inWord) { $words.Add($word.ToString()) }
        return , $words.ToArray()
    }

    # deno compile's target name for this machine.
    function Get-TargetName {
        # Windows PowerShell 5.1 has no $IsWindows; it only runs on Windows.
        if ($PSVersionTable.PSEdition -ne 'Core' -or $IsWindows) {
            # Windows on ARM runs the x64 build emulated; there is no native one.
            return 'x86_64-pc-windows-msvc'
        }
        $arch = [System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture.ToString()
        $cpu = switch ($arch) { 'X64' { 'x86_64' } 'Arm64' { 'aarch64' } default { $null } }
        if ($null -eq $cpu) { throw "there is no Get-IMAPAccessToken build for this CPU ($arch)." }
        if ($IsMacOS) { return "$cpu-apple-darwin" }
        return "$cpu-unknown-linux-gnu"
    }

    # The command to run, as an array: the program beside this script, or the override.
    function Get-ToolCommand {
        $override = $env:GET_IMAP_ACCESS_TOKEN_COMMAND
        if (-not [string]::IsNullOrWhiteSpace($override)) { return , (Split-CommandLine $override) }
        $target = Get-TargetName
        $name = if ($target -like '*windows*') { 'Get-IMAPAccessToken.exe' } else { 'Get-IMAPAccessToken' }
        $candidates = @(
            [System.IO.Path]::Combine($PSScriptRoot, $target, $name),
            [System.IO.Path]::Combine($PSScriptRoot, $name)
        )
        foreach ($candidate in $candidates) {
            # Not Test-Path: loading its module costs a large part of a second.
            if ([System.IO.File]::Exists($candidate)) { return , @($candidate) }
        }
        throw ("the Get-IMAPAccessToken program for $target was not found (looked for " +
            ($candidates -join ' and ') + "). Copy the folder $target from the release next to " +
            'this script, or set GET_IMAP_ACCESS_TOKEN_COMMAND to the command to run.')
    }

    # Windows PowerShell 5.1 and PowerShell before 7.3 join arguments into one command line without
    # escaping quotes, and drop empty strings. Quoting every argument ourselves, by the rules
    # programs use to split a Windows command line, makes them arrive intact.
    function ConvertTo-LegacyArgument([string]$Value) {
        # Backslashes before a quote are doubled and the quote escaped; so are trailing
        # backslashes, which would otherwise escape the closing quote.
        $escaped = [regex]::Replace($Value, '(\\*)"', { param($m) ($m.Groups[1].Value * 2) + '\"' })
        $escaped = [regex]::Replace($escaped, '(\\+)$', { param($m) $m.Groups[1].Value * 2 })
        return '"' + $escaped + '"'
    }

    # The program's arguments: exactly the parameters that were bound, each as one -Name:value
    # argument, so that a value that looks like a parameter (a secret starting with '-') stays a
    # value.
    function Get-ForwardedArguments($Bound, $VerbosePreferenceOfCaller) {
        $common = [System.Management.Automation.Cmdlet]::CommonParameters +
        [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $arguments = [System.Collections.Generic.List[string]]::new()
        foreach ($entry in $Bound.GetEnumerator()) {
            $name = $entry.Key
            $value = $entry.Value
            # PowerShell has already applied its common parameters; -Verbose is added below.
            if ($name -eq 'InputObject' -or $name -eq 'Verbose' -or $common -contains $name) { continue }
            if ($value -is [System.Management.Automation.SwitchParameter]) {
                $arguments.Add($(if ($value.IsPresent) { "-$name" } else { "-${name}:`$false" }))
            } elseif ($value -is [array]) {
                # -Scopes a,b and -targetMailbox a,b arrive as arrays; the program takes one
                # comma-separated value.
                $arguments.Add("-${name}:" + ($value -join ','))
            } elseif ($value -is [double] -or $value -is [int]) {
                # Not the current culture: 2.5 must not become "2,5".
                $arguments.Add("-${name}:" + $value.ToString([cultureinfo]::InvariantCulture))
            } else {
                $arguments.Add("-${name}:$value")
            }
        }
        # -Verbose is a common parameter here; the original also showed its verbose text when the
        # caller had set $VerbosePreference = 'Continue'.
        if ($Bound.ContainsKey('Verbose')) {
            $arguments.Add($(if ($Bound['Verbose'].IsPresent) { '-Verbose' } else { '-Verbose:$false' }))
        } elseif ($VerbosePreferenceOfCaller -eq 'Continue') {
            $arguments.Add('-Verbose')
        }
        return , $arguments.ToArray()
    }

    # Runs the program with its lines tagged (see Write-ToolLine) and puts each into its
    # PowerShell stream as it arrives; pipeline input goes to its stdin. Sets $LASTEXITCODE.
    # Preference and environment variables set here are restored or stay in this scope.
    function Invoke-Tool($Cmdlet, [string[]]$Command, [string[]]$Arguments, $InputLines, [bool]$HasInput) {
        $exe = $Command[0]
        $argv = $Arguments
        if ($Command.Length -gt 1) { $argv = @($Command[1..($Command.Length - 1)]) + $Arguments }
        if ($null -ne $ExecutionContext.SessionState.PSVariable.Get('PSNativeCommandArgumentPassing')) {
            # PowerShell 7.3+: every argument is passed as is, empty strings included.
            $PSNativeCommandArgumentPassing = 'Standard'
        } else {
            $argv = @(foreach ($arg in $argv) { ConvertTo-LegacyArgument $arg })
        }
        # The program reads and writes UTF-8; Windows PowerShell would otherwise send pipeline
        # input as ASCII and read the program's output in the console's code page.
        $OutputEncoding = [System.Text.UTF8Encoding]::new($false)
        $consoleEncoding = $null
        try {
            if ([Console]::OutputEncoding.CodePage -ne 65001) {
                $consoleEncoding = [Console]::OutputEncoding
                [Console]::OutputEncoding = $OutputEncoding
            }
        } catch {
            $consoleEncoding = $null # no console (e.g. a service): nothing to decode with anyway
        }
        $streams = $env:GET_IMAPACCESSTOKEN_STREAMS
        $env:GET_IMAPACCESSTOKEN_STREAMS = '1'
        try {
            if ($HasInput) {
                $InputLines | & $exe @argv | Write-ToolLine $Cmdlet
            } else {
                & $exe @argv | Write-ToolLine $Cmdlet
            }
        } finally {
            $env:GET_IMAPACCESSTOKEN_STREAMS = $streams
            if ($null -ne $consoleEncoding) { [Console]::OutputEncoding = $consoleEncoding }
        }
    }
}

process {
    if ($PSCmdlet.MyInvocation.ExpectingInput) { $pipelineInput.Add($InputObject) }
}

end {
    try {
        $command = Get-ToolCommand
    } catch {
        Write-ShimError $_.Exception.Message
        exit 1
    }
    $arguments = Get-ForwardedArguments $PSBoundParameters $VerbosePreference
    try {
        Invoke-Tool $PSCmdlet $command $arguments $pipelineInput $PSCmdlet.MyInvocation.ExpectingInput
    } catch [System.Management.Automation.CommandNotFoundException],
    [System.Management.Automation.ApplicationFailedException] {
        # Not found or not executable: no exit code to pass on.
        $reason = ($_.Exception.Message -split '\r?\n')[0]
        Write-ShimError "cannot run $($command[0]): $reason"
        exit 1
    }
    # The program's exit code becomes the caller's $LASTEXITCODE (and pwsh -File's exit code).
    exit $LASTEXITCODE
}
