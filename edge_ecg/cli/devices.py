"""``edge-ecg devices``: the ECG sources this machine can see (serial ports, BLE chest straps)."""

from __future__ import annotations

import json

import click

from edge_ecg.cli._options import json_option

def serial_ports() -> list[dict]:
    """Serial ports (pyserial's list), with what the system says each is."""
    from serial.tools import list_ports

    out = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        what = " ".join(x for x in (p.manufacturer, p.product) if x) or (p.description if p.description != "n/a" else "")
        out.append({"device": p.device, "what": what or "serial port", "hwid": p.hwid})
    return out


def ble_straps(scan_s: float) -> tuple[list[dict], str | None]:
    """``(straps, note)``: BLE ECG and heart-rate straps in range, or a note saying why none could be looked for."""
    import asyncio

    from edge_ecg.errors import DeviceError
    from edge_ecg.stream.sources.ble import ble_error, find_straps

    try:
        import bleak  # noqa: F401
    except ModuleNotFoundError as exc:
        return [], str(ble_error(exc, "BLE"))
    try:
        return asyncio.run(find_straps(scan_s)), None
    except DeviceError as exc:
        return [], str(exc)
    except Exception as exc:  # noqa: BLE001 - no adapter, no BlueZ, no permission: one line, exit 0
        return [], str(ble_error(exc, "BLE"))


@click.command()
@click.option("--scan-s", type=click.FloatRange(min=0.5, max=60), default=5.0, show_default=True,
              help="Seconds to listen for Bluetooth straps.")
@click.option("--no-ble", is_flag=True, help="List serial ports only (no Bluetooth scan).")
@json_option
def devices(scan_s, no_ble, as_json) -> None:
    """List the ECG sources in reach: serial ports and Bluetooth chest straps.

    Serial ports come from the system's list (what each is, when it says); Bluetooth straps
    from a scan of --scan-s seconds (the [ble] extra): a Polar H10 is an ECG source
    (`stream --device ble:ADDRESS`); a strap that only sends heart rate is listed as such. A
    machine without Bluetooth (no adapter, no BlueZ, no permission, bleak not installed)
    gets one line saying so and the fix, and the command still succeeds.

    \b
    Examples:
      edge-ecg devices                          serial ports and straps in range
      edge-ecg devices --no-ble                 serial ports only
      edge-ecg devices --scan-s 10 --json
    """
    ports = serial_ports()
    straps, note = ([], "BLE: not scanned (--no-ble)") if no_ble else ble_straps(scan_s)
    if as_json:
        click.echo(json.dumps({"serial": ports, "ble": straps, "ble_note": note}, indent=2))
        return
    click.echo(f"serial ports ({len(ports)}):" if ports else "serial ports: none")
    for p in ports:
        click.echo(f"  {p['device']:<22} {p['what']}   ->  edge-ecg stream --device {p['device']} --fs HZ")
    if note:
        click.echo(note)
        return
    click.echo(f"Bluetooth straps in range ({len(straps)}):" if straps else "Bluetooth straps in range: none")
    for s in straps:
        kind = "ECG (Polar PMD)" if s["ecg"] else "heart rate only (no ECG)"
        hint = f"  ->  edge-ecg stream --device ble:{s['address']}" if s["ecg"] else ""
        click.echo(f"  {s['address']:<22} {s['name'] or '?':<20} {kind}, RSSI {s['rssi']}{hint}")
