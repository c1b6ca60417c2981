"""What the stand-in's console commands print, in the display language it plays.

A German Windows (`--locale de`, the lab fault `HOST:locale-de`) translates what
netstat, ipconfig and cmd.exe print, netstat's state words included
(HERGESTELLT, not ESTABLISHED), and writes them in the OEM code page (850), as
WinRM carries a console program's output. Anything that parses those words
breaks there; what the tool reads through .NET enums or WMI values does not.
"""

from __future__ import annotations

LOCALES = ("en", "de")
#: the console (OEM) code page of each display language
CODE_PAGES = {"en": "cp437", "de": "cp850"}

#: netstat's state words (Windows' own, by language), from the kernel's TCP state names
NETSTAT_STATES = {
    "en": {
        "ESTABLISHED": "ESTABLISHED", "SYN_SENT": "SYN_SENT", "SYN_RECEIVED": "SYN_RECEIVED",
        "FIN_WAIT_1": "FIN_WAIT_1", "FIN_WAIT_2": "FIN_WAIT_2", "TIME_WAIT": "TIME_WAIT",
        "CLOSED": "CLOSED", "CLOSE_WAIT": "CLOSE_WAIT", "LAST_ACK": "LAST_ACK",
        "LISTENING": "LISTENING", "CLOSING": "CLOSING",
    },
    "de": {
        "ESTABLISHED": "HERGESTELLT", "SYN_SENT": "SYN_GESENDET",
        "SYN_RECEIVED": "SYN_EMPFANGEN", "FIN_WAIT_1": "FIN_WARTEN_1",
        "FIN_WAIT_2": "FIN_WARTEN_2", "TIME_WAIT": "WARTEND", "CLOSED": "GESCHLOSSEN",
        "CLOSE_WAIT": "SCHLIESSEN_WARTEN", "LAST_ACK": "LETZTES_ACK",
        "LISTENING": "ABHÖREN", "CLOSING": "SCHLIESSEN",
    },
}  # fmt: skip

TEXTS = {
    "en": {
        "netstat_title": "Active Connections",
        "netstat_header": ("Proto", "Local Address", "Foreign Address", "State", "PID"),
        "ipconfig_flushed": (
            "\r\nWindows IP Configuration\r\n\r\nSuccessfully flushed the DNS Resolver Cache.\r\n"
        ),
        "no_powershell": (
            "'powershell.exe' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n"
        ),
        "line_too_long": "The command line is too long.\r\n",
        "term_not_recognized": (
            "The term '{term}' is not recognized as a cmdlet, function, operable program,"
            " or script file. Verify the term and try again."
        ),
    },
    "de": {
        "netstat_title": "Aktive Verbindungen",
        "netstat_header": ("Proto", "Lokale Adresse", "Remoteadresse", "Status", "PID"),
        "ipconfig_flushed": (
            "\r\nWindows-IP-Konfiguration\r\n\r\nDer DNS-Auflösungscache wurde geleert.\r\n"
        ),
        "no_powershell": (
            'Der Befehl "powershell.exe" ist entweder falsch geschrieben oder\r\n'
            "konnte nicht gefunden werden.\r\n"
        ),
        "line_too_long": "Die Befehlszeile ist zu lang.\r\n",
        "term_not_recognized": (
            'Die Benennung "{term}" wurde nicht als Name eines Cmdlet, einer Funktion,'
            " einer Skriptdatei oder eines ausführbaren Programms erkannt. Überprüfen Sie"
            " die Schreibweise des Namens, oder ob der Pfad korrekt ist (sofern enthalten),"
            " und wiederholen Sie den Vorgang."
        ),
    },
}


def console(locale: str, key: str) -> bytes:
    """A console text of `locale`, in its OEM code page."""
    return str(TEXTS[locale][key]).encode(CODE_PAGES[locale])


def netstat_output(locale: str, rows: list[tuple[str, str, str]]) -> bytes:
    """`netstat -ano -p TCP` as that Windows prints it: (local, remote, state) rows,
    the state a kernel name (ESTABLISHED, LISTENING, ...); PID 0 (none is known)."""
    texts = TEXTS[locale]
    words = NETSTAT_STATES[locale]
    proto, local, remote, state, pid = texts["netstat_header"]
    lines = [
        "",
        texts["netstat_title"],
        "",
        f"  {proto:<6} {local:<22} {remote:<22} {state:<16} {pid}",
    ]
    for here, there, kernel_state in rows:
        word = words.get(kernel_state, kernel_state)
        lines.append(f"  TCP    {here:<22} {there:<22} {word:<16} 0")
    return ("\r\n".join(lines) + "\r\n").encode(CODE_PAGES[locale])
