"""A test stand-in for a Windows host reached over WinRM. It is NOT Windows.

It speaks WS-Management at /wsman exactly as pywinrm sends it (Create shell,
Command, Receive, Signal, Delete; Basic, and NTLM with message encryption
through pyspnego), so the real pywinrm client and `WinRMHost` are exercised
end to end. It runs only the commands the WinRM transport emits (see
executor.py and README.md) against its own sandbox directory, which holds a
Windows-style tree with `Windows/System32/drivers/etc/hosts` (CRLF).

Run: python -m ocsscale_lab.winrm_host --listen ADDR --port PORT
        [--tls-cert C --tls-key K] --users-file F --sandbox DIR --pidfile P
        [--auth basic,ntlm]
"""
