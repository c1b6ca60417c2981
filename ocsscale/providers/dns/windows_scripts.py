"""The PowerShell the Windows DNS provider sends to a DNS server over WinRM.

Written for PowerShell 2.0 (Windows Server 2008 R2 and later run it): no
ConvertTo-Json, no `[ordered]`, no `-in`, no member enumeration; native
programs are called with `$ErrorActionPreference = 'Continue'` because 2.0
turns a native program's stderr into a terminating error under 'Stop'.

Two tools do the same three operations: `dnscmd` (Windows Server 2003 to
2019) and the DnsServer module's cmdlets (2012 and later). Parameters are
bound by `PsScript` as quoted literals: `$Server`, `$Zone`, `$Node` (the
name relative to the zone, `@` for the apex), `$Type`, and for `replace`
`$Expect` / `$Values` (comma-separated) and `$Ttl` (seconds).

Output, one item per line on stdout (parsed by windows.py):
    OCSSCALE-DNS tool <dnscmd|dnsserver-module|none>   (detect)
    OCSSCALE-DNS <read|conflict|done>                  then
    OCSSCALE-DNS-RR <ttl> <value>                      per record, then
    OCSSCALE-DNS end
An error is one `ocsscale: <message>` line on stderr and exit 1; a step that
fails puts the old records back (again adding before removing) before it
reports.

A change never leaves the name without a record (Windows clients cache a
"no such name" answer): `replace` adds the new values first, gives a value
that stays its new TTL in place, and only then removes the old values
(REPLACE_STEPS, in that order). For a moment both the old and the new value
answer; never neither. dnscmd has no way to change a TTL in place, so the
dnscmd scripts do that through WMI (MicrosoftDNS_AType and friends, `Modify`,
on the DNS server since Windows Server 2003).

An SRV value is one text, `priority weight port target` (as dnspython writes
it); the scripts hand dnscmd its four fields as four arguments, and read the
DnsServer module's and WMI's SRV records field by field.
"""

from __future__ import annotations

from functools import cache

MARKER_PREFIX = "# ocsscale:dns="
LINE_PREFIX = "OCSSCALE-DNS"
RR_PREFIX = "OCSSCALE-DNS-RR "
ERROR_PREFIX = "ocsscale: "
TOOLS = ("dnscmd", "dnsserver-module")
#: record types both tools read and write the same way
TYPES = ("A", "AAAA", "CNAME", "SRV")

_COMMON = r"""$ErrorActionPreference = 'Continue'
function Fail([string] $Message) {
    [Console]::Error.WriteLine('ocsscale: ' + $Message)
    exit 1
}
function Say([string] $Line) { [Console]::Out.WriteLine($Line) }
function Norm([string] $Value) { return ($Value.Trim() -replace '\s+', ' ').TrimEnd('.').ToLowerInvariant() }
function Set-Key($List) {
    $n = @($List | Where-Object { $_ -and $_.Trim() -ne '' } | ForEach-Object { Norm $_ } | Sort-Object -Unique)
    return [string]::Join(',', $n)
}
# an SRV value's four fields (dnscmd takes them as four arguments: an array passes each as one)
function Fields([string] $Value) { return @($Value.Split(' ') | Where-Object { $_ -ne '' }) }
function Out-Records([string] $State, $Records) {
    Say ('OCSSCALE-DNS ' + $State)
    foreach ($r in $Records) { Say ('OCSSCALE-DNS-RR ' + $r) }
    Say 'OCSSCALE-DNS end'
}
"""  # noqa: E501

_DNSCMD_FUNCTIONS = r"""function Text($Output) { return [string]::Join(' ', @($Output | ForEach-Object { $_.ToString().Trim() } | Where-Object { $_ -ne '' })) }
function Get-OcsRecords {
    $out = & dnscmd.exe $Server /EnumRecords $Zone $Node /Type $Type 2>&1
    $code = $LASTEXITCODE
    $text = Text $out
    if ($text -match 'DNS_ERROR_NAME_DOES_NOT_EXIST' -or $text -match 'DNS_ERROR_RECORD_DOES_NOT_EXIST') { return }
    if ($code -ne 0) { Fail ('dnscmd /EnumRecords ' + $Node + ' failed (exit ' + $code + '): ' + $text) }
    $data = '(\S+)'
    if ($Type -eq 'SRV') { $data = '(\d+\s+\d+\s+\d+\s+\S+)' }
    $pattern = '^\S*\s+(?:\[Aging:\d+\]\s+)?(\d+)\s+' + [regex]::Escape($Type) + '\s+' + $data + '\s*$'
    foreach ($line in $out) {
        $m = [regex]::Match($line.ToString(), $pattern)
        if ($m.Success) { $m.Groups[1].Value + ' ' + ($m.Groups[2].Value -replace '\s+', ' ') }
    }
}
function Remove-OcsRecord([string] $Value) {
    $out = & dnscmd.exe $Server /RecordDelete $Zone $Node $Type (Fields $Value) /f 2>&1
    if ($LASTEXITCODE -ne 0) { return ('dnscmd /RecordDelete ' + $Value + ' failed (exit ' + $LASTEXITCODE + '): ' + (Text $out)) }
    return ''
}
function Wql([string] $Text) { return $Text.Replace('\', '\\').Replace("'", "\'") }
function Set-OcsTtl([string] $Value, [string] $Seconds) {
    # dnscmd cannot change a TTL in place; WMI's Modify can (Server 2003 and later)
    $owner = $Zone
    if ($Node -ne '@') { $owner = $Node + '.' + $Zone }
    $found = @()
    try {
        $found = @(Get-WmiObject -ComputerName $Server -Namespace 'root\MicrosoftDNS' -Class ('MicrosoftDNS_' + $Type + 'Type') -Filter ("ContainerName='" + (Wql $Zone) + "' AND OwnerName='" + (Wql $owner) + "'") -ErrorAction Stop)
    } catch { return ('WMI MicrosoftDNS_' + $Type + 'Type ' + $Node + ' failed: ' + $_.Exception.Message) }
    foreach ($rr in $found) {
        $data = [string]$rr.RecordData
        # MicrosoftDNS_SRVType's Modify takes the fields one by one
        if ($Type -eq 'SRV') { $data = [string]$rr.Priority + ' ' + $rr.Weight + ' ' + $rr.Port + ' ' + $rr.DomainName }
        if ((Norm $data) -ne (Norm $Value)) { continue }
        try {
            if ($Type -eq 'SRV') { $rr.Modify([uint32]$Seconds, $rr.Priority, $rr.Weight, $rr.Port, $rr.DomainName) | Out-Null }
            else { $rr.Modify([uint32]$Seconds, $data) | Out-Null }
        } catch { return ('WMI Modify of ' + $Value + ' failed: ' + $_.Exception.Message) }
        return ''
    }
    return ('WMI finds no ' + $Type + ' record ' + $Value + ' at ' + $Node)
}
function Add-OcsRecord([string] $Value, [string] $Seconds) {
    $out = & dnscmd.exe $Server /RecordAdd $Zone $Node $Seconds $Type (Fields $Value) 2>&1
    if ($LASTEXITCODE -ne 0) { return ('dnscmd /RecordAdd ' + $Value + ' failed (exit ' + $LASTEXITCODE + '): ' + (Text $out)) }
    return ''
}
"""  # noqa: E501

_MODULE_FUNCTIONS = r"""try { Import-Module DnsServer -ErrorAction Stop }
catch { Fail ('the DnsServer module cannot be loaded: ' + $_.Exception.Message) }
function Get-OcsValue($Record) {
    $d = $Record.RecordData
    if ($Type -eq 'A') { return $d.IPv4Address.IPAddressToString }
    if ($Type -eq 'AAAA') { return $d.IPv6Address.IPAddressToString }
    if ($Type -eq 'SRV') { return ([string]$d.Priority + ' ' + $d.Weight + ' ' + $d.Port + ' ' + $d.DomainName) }
    return $d.HostNameAlias
}
function Get-OcsRecords {
    $rrs = @()
    try {
        $rrs = @(Get-DnsServerResourceRecord -ComputerName $Server -ZoneName $Zone -Name $Node -RRType $Type -ErrorAction Stop)
    } catch {
        $missing = $_.CategoryInfo.Category -eq 'ObjectNotFound'
        if ($missing -and $_.Exception -isnot [Management.Automation.CommandNotFoundException]) { return }
        Fail ('Get-DnsServerResourceRecord ' + $Node + ' failed: ' + $_.Exception.Message)
    }
    foreach ($rr in $rrs) { ([string][int]$rr.TimeToLive.TotalSeconds) + ' ' + (Get-OcsValue $rr) }
}
function Remove-OcsRecord([string] $Value) {
    try {
        if ($Type -eq 'SRV') {
            # an SRV record's data is four fields: removed as the record object read
            foreach ($rr in @(Get-DnsServerResourceRecord -ComputerName $Server -ZoneName $Zone -Name $Node -RRType $Type -ErrorAction Stop)) {
                if ((Norm (Get-OcsValue $rr)) -ne (Norm $Value)) { continue }
                Remove-DnsServerResourceRecord -ComputerName $Server -ZoneName $Zone -InputObject $rr -Force -ErrorAction Stop
                return ''
            }
            return ('no SRV record ' + $Value + ' at ' + $Node)
        }
        Remove-DnsServerResourceRecord -ComputerName $Server -ZoneName $Zone -Name $Node -RRType $Type -RecordData $Value -Force -ErrorAction Stop
    } catch { return ('Remove-DnsServerResourceRecord ' + $Value + ' failed: ' + $_.Exception.Message) }
    return ''
}
function Add-OcsRecord([string] $Value, [string] $Seconds) {
    $span = New-TimeSpan -Seconds ([int]$Seconds)
    try {
        if ($Type -eq 'A') { Add-DnsServerResourceRecordA -ComputerName $Server -ZoneName $Zone -Name $Node -IPv4Address $Value -TimeToLive $span -ErrorAction Stop }
        elseif ($Type -eq 'AAAA') { Add-DnsServerResourceRecordAAAA -ComputerName $Server -ZoneName $Zone -Name $Node -IPv6Address $Value -TimeToLive $span -ErrorAction Stop }
        elseif ($Type -eq 'SRV') {
            $f = Fields $Value
            Add-DnsServerResourceRecord -ComputerName $Server -ZoneName $Zone -Srv -Name $Node -Priority $f[0] -Weight $f[1] -Port $f[2] -DomainName $f[3] -TimeToLive $span -ErrorAction Stop
        }
        else { Add-DnsServerResourceRecordCName -ComputerName $Server -ZoneName $Zone -Name $Node -HostNameAlias $Value -TimeToLive $span -ErrorAction Stop }
    } catch { return ('Add-DnsServerResourceRecord ' + $Value + ' failed: ' + $_.Exception.Message) }
    return ''
}
function Set-OcsTtl([string] $Value, [string] $Seconds) {
    try {
        foreach ($rr in @(Get-DnsServerResourceRecord -ComputerName $Server -ZoneName $Zone -Name $Node -RRType $Type -ErrorAction Stop)) {
            if ((Norm (Get-OcsValue $rr)) -ne (Norm $Value)) { continue }
            $new = $rr.Clone()
            $new.TimeToLive = New-TimeSpan -Seconds ([int]$Seconds)
            Set-DnsServerResourceRecord -ComputerName $Server -ZoneName $Zone -OldInputObject $rr -NewInputObject $new -ErrorAction Stop
            return ''
        }
    } catch { return ('Set-DnsServerResourceRecord ' + $Value + ' failed: ' + $_.Exception.Message) }
    return ('no ' + $Type + ' record ' + $Value + ' at ' + $Node)
}
"""  # noqa: E501

_READ = r"""Out-Records 'read' @(Get-OcsRecords)
exit 0
"""  # noqa: E501

# The check and the change are as close together as one script allows; the
# Windows tools have no prerequisite, so the read-back proves the result.
_CHECK = r"""$current = @(Get-OcsRecords)
$currentValues = @($current | ForEach-Object { $_.Split(' ', 2)[1] })
if ((Set-Key $currentValues) -ne (Set-Key $Expect.Split(','))) {
    Out-Records 'conflict' $current
    exit 0
}
function Has($List, [string] $Value) { return (',' + (Set-Key $List) + ',').Contains(',' + (Norm $Value) + ',') }
$wanted = @($Values.Split(',') | Where-Object { $_ -ne '' })
$problem = ''
$added = @()
$retimed = @()
$removed = @()
"""  # noqa: E501

#: the steps of `replace`, in the order they run: the name always answers
REPLACE_STEPS = ("add", "retime", "remove")

_STEPS = {
    # the new values beside the old ones: for a moment both answer
    "add": r"""if (-not $problem) {
    foreach ($v in $wanted) {
        if (Has $currentValues $v) { continue }
        $problem = Add-OcsRecord $v $Ttl
        if ($problem) { break }
        $added += $v
    }
}
""",
    # a value that stays gets its new TTL in place, never removed and added back
    "retime": r"""if (-not $problem) {
    foreach ($r in $current) {
        $p = $r.Split(' ', 2)
        if (-not (Has $wanted $p[1]) -or $p[0] -eq $Ttl) { continue }
        $problem = Set-OcsTtl $p[1] $Ttl
        if ($problem) { break }
        $retimed += $r
    }
}
""",
    # only then the old values out
    "remove": r"""if (-not $problem) {
    foreach ($r in $current) {
        $p = $r.Split(' ', 2)
        if (Has $wanted $p[1]) { continue }
        $problem = Remove-OcsRecord $p[1]
        if ($problem) { break }
        $removed += $r
    }
}
""",
}

_FINISH = r"""if ($problem) {
    # Nothing half-done: the old RRset back as it was, adding before removing here too.
    foreach ($r in $removed) { $p = $r.Split(' ', 2); Add-OcsRecord $p[1] $p[0] | Out-Null }
    foreach ($r in $retimed) { $p = $r.Split(' ', 2); Set-OcsTtl $p[1] $p[0] | Out-Null }
    foreach ($v in $added) { Remove-OcsRecord $v | Out-Null }
    Fail ($problem + '; the old records were put back')
}
Out-Records 'done' @(Get-OcsRecords)
exit 0
"""  # noqa: E501

#: each step's text, as the replace body holds it (the stand-in finds them there)
STEP_TEXT = dict(_STEPS)
_REPLACE = _CHECK + "".join(_STEPS[step] for step in REPLACE_STEPS) + _FINISH

_DETECT = r"""$ErrorActionPreference = 'Continue'
$tool = 'none'
if (@(Get-Module -ListAvailable -Name DnsServer).Count -gt 0) { $tool = 'dnsserver-module' }
elseif (Get-Command dnscmd.exe -ErrorAction SilentlyContinue) { $tool = 'dnscmd' }
[Console]::Out.WriteLine('OCSSCALE-DNS tool ' + $tool)
exit 0
"""  # noqa: E501


@cache
def script_body(tool: str, operation: str) -> str:
    """The body of one operation (`detect`, `read`, `replace`) for `tool`."""
    if operation == "detect":
        return MARKER_PREFIX + "detect\n" + _DETECT
    if tool not in TOOLS or operation not in ("read", "replace"):
        raise ValueError(f"no Windows DNS script {tool}/{operation}")
    functions = _DNSCMD_FUNCTIONS if tool == "dnscmd" else _MODULE_FUNCTIONS
    body = _READ if operation == "read" else _REPLACE
    return f"{MARKER_PREFIX}{tool}/{operation}\n{_COMMON}{functions}{body}"


def all_scripts() -> dict[str, tuple[str, str]]:
    """Every body, mapped to its (tool, operation): what a host may be sent."""
    found = {script_body("", "detect"): ("", "detect")}
    for tool in TOOLS:
        for operation in ("read", "replace"):
            found[script_body(tool, operation)] = (tool, operation)
    return found


def default_server(tool: str) -> str:
    """The server the tool addresses: the DNS server the script runs on."""
    return "." if tool == "dnscmd" else "localhost"
