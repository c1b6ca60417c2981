"""Which names the cutover moves with the pool name, and which it leaves (dns.keep).

The pool FQDN always moves. A SIP service (the profile has SIP ports) also
moves sip.<domain>, and retargets the SIP SRV records of <domain> whose
target is the legacy FE's own host name (to dns.srv_target, default the pool
FQDN); every service moves the names in dns.names. A name is left where it is
only when dns.keep lists it. Computed here once, from the pool file and the
profile: the playbooks iterate over it (`cutover_names`), the rules check it,
the inventory and the plan show it.
"""

from __future__ import annotations

from typing import Any

#: the SIP SRV records clients use for automatic sign-in (internal TLS, internal
#: TCP, the external/TLS one): each follows the pool name when it targets the legacy FE
SRV_LABELS = ("_sipinternaltls._tcp", "_sipinternal._tcp", "_sip._tls")


def _n(name: str) -> str:
    return name.rstrip(".").lower()


def is_sip(profile: Any) -> bool:
    sip = profile.sip_ports
    return sip.tls is not None or sip.tcp is not None


def kept(pool: Any) -> set[str]:
    return {_n(n) for n in pool.dns.keep}


def a_names(pool: Any, sip: bool) -> list[str]:
    """Every A name the cutover considers, pool FQDN first (dns.keep not applied)."""
    names = [_n(pool.pool.fqdn)]
    if sip:
        names.append(f"sip.{_n(pool.pool.sip_domain)}")
    names += [_n(n) for n in pool.dns.names]
    return list(dict.fromkeys(names))


def srv_names(pool: Any, sip: bool) -> list[str]:
    if not sip:
        return []
    return [f"{label}.{_n(pool.pool.sip_domain)}" for label in SRV_LABELS]


def srv_target(pool: Any) -> str:
    return _n(pool.dns.srv_target or pool.pool.fqdn)


def cutover_names(pool: Any, profile: Any) -> dict[str, Any]:
    """What the playbooks see as `cutover_names`:
    `a`: the other A names that move with the pool name (each {name}),
    `srv`: the SRV names retargeted when they aim at the legacy FE (each {name}),
    `kept`: the names dns.keep leaves where they are, `srv_from`/`srv_to`."""
    sip = is_sip(profile)
    keep = kept(pool)
    pool_name = _n(pool.pool.fqdn)
    considered = a_names(pool, sip) + srv_names(pool, sip)
    return {
        "a": [{"name": n} for n in a_names(pool, sip) if n != pool_name and n not in keep],
        "srv": [{"name": n} for n in srv_names(pool, sip) if n not in keep],
        "kept": [n for n in considered if n in keep],
        "srv_from": _n(pool.legacy_fe.fqdn),
        "srv_to": srv_target(pool),
    }
