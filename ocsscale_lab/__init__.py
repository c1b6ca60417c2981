"""The rehearsal lab: the walkthrough's whole network on one Linux machine.

A sibling of the `ocsscale` package, installed with it by the `lab` extra: it imports
the product, the product never imports it (`ocsscale lab` mounts `ocsscale_lab.cli` by
name). `make demo` runs demo.py.

`ocsscale lab up` builds it from network namespaces (`<lab>-<host>`), with the
bridges in a switch namespace of their own (`<lab>-sw`) and addresses only in
198.18.0.0/15, and starts real servers in it: OpenSSH sshd on every Linux
host, BIND 9 (TSIG-signed updates only), the pool-member stand-in on every FE
(poolmember.py), a directory stand-in on 135 (directory.py) and the WinRM
stand-in on the Windows test client (winrm_host/). Everything lives under
/run/ocsscale-lab/<lab>/, including the journal `lab down` removes it by and
a ready pool file. `lab up --fault HOST:KIND` builds it with a fault to
rehearse (faults.py: a certificate with wrong SANs, a closed port, a hosts
file that cannot be written).

Modules: topology (who has which address), state (directory and journal),
system (iproute2, namespaces, processes), network (wiring), sshd, dns,
hostsvc (which services each host runs), services and svc (starting and
restarting them), faults, poolfile, up, down, status, cli.
"""
