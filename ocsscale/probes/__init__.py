"""Read-only probes that return evidence: TCP, TLS, SIP OPTIONS, HTTPS GET, certificate rules.

Every probe takes a ``connect(host, port, timeout) -> Stream`` callable, so the
same probe runs from the admin host (the default, a plain socket) or from a
remote host through a channel that host opens. No probe raises for an expected
failure: it returns :class:`ProbeEvidence` with ``ok=False`` and a ``detail``.
"""

from ocsscale.probes.basic import parse_banner, tcp_probe, tls_probe
from ocsscale.probes.certrules import ALL_RULES, CertFinding, all_ok, check_certificate
from ocsscale.probes.evidence import CertSummary, Failure, ProbeEvidence, ProbeKind
from ocsscale.probes.https import https_get_probe
from ocsscale.probes.session import name_matches
from ocsscale.probes.sip import SipTransport, sip_options_probe
from ocsscale.probes.stream import (
    ConnectError,
    Connector,
    Stream,
    make_socket_connector,
    socket_connector,
)
from ocsscale.probes.tlsclient import NameCheck, TlsOptions

__all__ = [
    "ALL_RULES",
    "CertFinding",
    "CertSummary",
    "ConnectError",
    "Connector",
    "Failure",
    "NameCheck",
    "ProbeEvidence",
    "ProbeKind",
    "SipTransport",
    "Stream",
    "TlsOptions",
    "all_ok",
    "check_certificate",
    "https_get_probe",
    "make_socket_connector",
    "name_matches",
    "parse_banner",
    "sip_options_probe",
    "socket_connector",
    "tcp_probe",
    "tls_probe",
]
