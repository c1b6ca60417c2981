"""Ways to drive a host: SSH (paramiko), WinRM (pywinrm) and local."""
