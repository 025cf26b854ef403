<#
.SYNOPSIS
Drop-in replacement for Get-IMAPAccessToken.ps1: tests OAuth2 (XOAUTH2) logins to Exchange Online
over IMAP or POP3.

.DESCRIPTION
This script only forwards its parameters to the Get-IMAPAccessToken program, which does the work on
Windows, Linux and macOS without MSAL.PS. It has the original script's parameters and parameter
sets, plus the program's new ones, so existing calls keep working. The program's exit code ends up
in $LASTEXITCODE (0 = success; see the README for the others).

Get-IMAPAccessToken.Shim.dll, from the same release, must be beside this script: it runs the
program once PowerShell has bound the parameters.

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
    # The rest is done by Get-IMAPAccessToken.Shim.dll beside this script (its source:
    # scripts/shim/Shim.cs): find the program, pass the bound parameters on as its arguments, run
    # it and put each of its lines into the stream the original script used. Compiled because
    # this runs before every mail fetch, and PowerShell compiles (JIT) each step of a script at
    # every start. What it costs is measured by `deno task bench` (shim overhead).
    $helper = "$PSScriptRoot/Get-IMAPAccessToken.Shim.dll" # / works on Windows too
    try {
        [void][System.Reflection.Assembly]::LoadFrom($helper)
    } catch {
        $reason = if ([System.IO.File]::Exists($helper)) { 'cannot be loaded: ' + $_.Exception.Message } else { 'was not found' }
        Write-Host -ForegroundColor Red ("ERROR: $helper $reason. Copy Get-IMAPAccessToken.Shim.dll " +
            'from the release next to this script.')
        exit 1
    }
    $stdin = $null
    if ($PSCmdlet.MyInvocation.ExpectingInput) { $stdin = [object[]]$pipelineInput }
    # The program's exit code becomes the caller's $LASTEXITCODE (and pwsh -File's exit code).
    exit ([GetImapAccessToken.Shim]::Run($PSCmdlet, $PSScriptRoot, $stdin))
}
