"""The topology picture: networks as lines, hosts as boxes, the LB on them.

Drawn like the walkthrough's diagrams: one-armed, one network that the test
clients, the legacy FE, DNS, the directory, the LB and the new FEs all sit
on; two-armed, a second network below the first with the LB between them
(its VIP on the client side, its back-end arm on the FE side). Each host is
placed on the network its address belongs to, so the picture shows the pool
file as it is, also when it is unusual.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from . import svg

BOX_W, BOX_H = 156, 58
LB_W, LB_H = 250, 78
GAP = 18
MARGIN = 20
GUTTER = 120  # left of the network lines: their names

_ROLE_STYLE = {
    "client": (svg.GREY_FILL, svg.LINE, "test client"),
    "legacy": (svg.AMBER_FILL, svg.AMBER, "legacy FE"),
    "fe": (svg.GREEN_FILL, svg.GREEN, "front end"),
    "dns": (svg.GREY_FILL, svg.LINE, "DNS"),
    "directory": (svg.GREY_FILL, svg.LINE, "directory"),
}


def _network(value: str | None) -> IPv4Network | None:
    if not value:
        return None
    try:
        return IPv4Interface(value).network
    except ValueError:
        return None


def _on(address: str, net: IPv4Network | None) -> bool:
    try:
        return net is not None and IPv4Address(address) in net
    except ValueError:
        return False


def _box(x: float, y: float, node: dict[str, Any]) -> str:
    fill, stroke, role = _ROLE_STYLE[node["role"]]
    lines = [
        svg.rect(x, y, BOX_W, BOX_H, rx=6, fill=fill, stroke=stroke, stroke_width=1.5),
        svg.text(x + 10, y + 19, svg.fit(node["name"], 20), 13, font_weight="bold"),
        svg.text(x + 10, y + 36, svg.fit(node["address"], 22), 12),
        svg.text(x + 10, y + 51, svg.fit(node.get("note") or role, 24), 10.5, fill=svg.MUTED),
    ]
    return "".join([f"<g>{svg.title(node.get('tip') or node['name'])}", *lines, "</g>"])


def _centres(count: int, width: float) -> list[float]:
    """Centres of `count` boxes spread evenly along the network lines."""
    left = MARGIN + GUTTER
    slot = (width - MARGIN - left) / max(count, 1)
    return [left + slot * (i + 0.5) for i in range(count)]


def _nodes(pool: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    clients = [
        {"role": "client", "name": c["name"], "address": c["address"], "note": "test client"}
        for c in pool["test_clients"]
    ]
    legacy = pool["legacy_fe"]
    fes = [
        {
            "role": "fe",
            "name": fe["name"],
            "address": fe["address"],
            "note": f"front end, weight {fe['weight']}",
            "tip": f"{fe['fqdn']} ({fe['address']}), weight {fe['weight']}",
        }
        for fe in pool["front_ends"]
    ]
    dns = pool["dns"]
    servers = list(dns["servers"]) or ([dns["host"]["address"]] if dns.get("host") else [])
    others = [
        {
            "role": "legacy",
            "name": legacy["name"],
            "address": legacy["address"],
            "note": "legacy FE (to retire)",
            "tip": f"{legacy['fqdn']} ({legacy['address']})",
        },
        *[
            {"role": "dns", "name": "DNS", "address": s, "note": f"DNS, zone {dns['zone']}"}
            for s in servers
        ],
        {
            "role": "directory",
            "name": pool["directory"]["name"],
            "address": pool["directory"]["address"],
            "note": f"directory (:{pool['directory']['port']})",
        },
    ]
    return {"clients": clients, "fes": fes, "others": others}


def _lb_box(x: float, y: float, pool: dict[str, Any]) -> str:
    lb = pool["load_balancer"]
    snat = ", ".join(lb["snat_addresses"]) or "the VIP"
    host = lb.get("host")
    where = f"{host['name']} · " if host else ""
    return "".join(
        [
            "<g>",
            svg.title(f"{lb['topology']}, {lb['mode']}; VIP {lb['vip']}; SNAT {snat}"),
            svg.rect(x, y, LB_W, LB_H, rx=8, fill=svg.BLUE_FILL, stroke=svg.BLUE, stroke_width=2),
            svg.text(x + 12, y + 20, f"load balancer ({lb['driver']})", 13, font_weight="bold"),
            svg.text(x + 12, y + 38, f"VIP {lb['vip']}", 12.5, fill=svg.BLUE, font_weight="bold"),
            svg.text(x + 12, y + 55, svg.fit(f"SNAT {snat}", 34), 11.5),
            svg.text(
                x + 12, y + 70, f"{where}{lb['topology']}, {lb['mode']}", 10.5, fill=svg.MUTED
            ),
            "</g>",
        ]
    )


def _bus(y: float, width: float, name: str, net: IPv4Network | None) -> list[str]:
    """A network: a thick line, its name and prefix at its left end."""
    x = MARGIN + GUTTER - 10
    return [
        svg.line(MARGIN + GUTTER, y, width - MARGIN, y, stroke=svg.INK, stroke_width=3),
        svg.text(x, y - 3, name, 12, text_anchor="end", font_weight="bold"),
        svg.text(x, y + 12, str(net) if net else "", 11.5, text_anchor="end", fill=svg.MUTED),
    ]


def draw(pool: dict[str, Any]) -> str:
    lb = pool["load_balancer"]
    client_net = _network(lb["vip"])
    back_net = _network(lb.get("backend_address"))
    two_armed = lb["topology"] != "one-armed"
    nodes = _nodes(pool)
    top = nodes["clients"] + nodes["others"]
    # routed: the FEs on another subnet sit behind the LB; transparent: all of
    # them do (the LB bridges, so they may share the VIP's subnet)
    transparent = lb["topology"] == "two-armed-transparent"
    behind = [
        fe
        for fe in nodes["fes"]
        if two_armed and (transparent or not _on(fe["address"], client_net))
    ]
    beside = [fe for fe in nodes["fes"] if fe not in behind]
    # the LB sits in the middle of the row below the client network
    half = len(beside) // 2
    below: list[dict[str, Any] | None] = [*beside[:half], None, *beside[half:]]
    widest = max(
        len(top) * (BOX_W + GAP),
        len(beside) * (BOX_W + GAP) + LB_W + GAP,
        len(behind) * (BOX_W + GAP),
    )
    width = max(1040.0, widest + 2 * MARGIN + GUTTER)
    body: list[str] = []

    y_top, y_bus = 30.0, 30.0 + BOX_H + 40
    y_row = y_bus + 40
    body += _bus(y_bus, width, "client network", client_net)
    for centre, node in zip(_centres(len(top), width), top, strict=True):
        body.append(svg.line(centre, y_top + BOX_H, centre, y_bus, stroke_width=2))
        body.append(_box(centre - BOX_W / 2, y_top, node))

    # the row below the client network: FEs on it (one-armed) and the LB
    lb_x = 0.0
    for centre, node in zip(_centres(len(below), width), below, strict=True):
        if node is None:
            lb_x = centre - LB_W / 2
            body.append(svg.line(centre, y_bus, centre, y_row, stroke=svg.BLUE, stroke_width=2.5))
            body.append(_lb_box(lb_x, y_row, pool))
            continue
        body.append(svg.line(centre, y_bus, centre, y_row, stroke_width=2))
        body.append(_box(centre - BOX_W / 2, y_row, node))
    height = y_row + LB_H + 30

    if two_armed:
        y_bus2 = y_row + LB_H + 44
        y_fes = y_bus2 + 40
        arm = lb.get("backend_address") or "back-end arm"
        body += _bus(y_bus2, width, "front-end net", back_net)
        centre = lb_x + LB_W / 2
        body.append(
            svg.line(centre, y_row + LB_H, centre, y_bus2, stroke=svg.BLUE, stroke_width=2.5)
        )
        body.append(
            svg.text(centre + 8, y_row + LB_H + 26, f"back-end arm {arm}", 11.5, fill=svg.BLUE)
        )
        for centre, node in zip(_centres(len(behind), width), behind, strict=True):
            body.append(svg.line(centre, y_bus2, centre, y_fes, stroke_width=2))
            body.append(_box(centre - BOX_W / 2, y_fes, node))
        height = y_fes + BOX_H + 30

    caption = (
        f"{pool['fqdn']}: {len(nodes['fes'])} front end(s) behind VIP {lb['vip']}, {lb['topology']}"
    )
    body.append(svg.text(MARGIN, height - 8, caption, 11.5, fill=svg.MUTED))
    return svg.document(width, height, body, f"topology of {pool['fqdn']}")
