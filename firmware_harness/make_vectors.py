"""Write ``vectors/protocol_v1.json``: the byte vectors both encoders and the decoder are held to.

Run ``python -m firmware_harness.make_vectors`` only for a deliberate change of the wire
format (and then bump the protocol version): the point of the file is that it does NOT
follow the code. ``tests/test_protocol.py`` checks the Python encoder and decoder against
it, ``tests/test_firmware_c.py`` the compiled C encoder.

Decoder cases are built from known pieces, so their expected counters come from the
construction (e.g. "7 garbage bytes were inserted"), not from running the decoder.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_ecg.stream import protocol as P

OUT = Path(__file__).resolve().parent / "vectors" / "protocol_v1.json"

HEADERS = [
    ("mitdb_360hz", dict(fs=360.0, gain=200.0, baseline=1024, channels=1, samples_per_frame=10, adc_bits=11,
                         firmware_version=0x0100, device_id=1)),
    ("uno_ad8232_250hz", dict(fs=250.0, gain=341.333, baseline=512, channels=1, samples_per_frame=10, adc_bits=10,
                              firmware_version=0x0102, device_id=0x00C0FFEE)),
    ("uno_360hz_timer_rounding", dict(fs=360.003, gain=341.333, baseline=512, channels=1, samples_per_frame=8,
                                      adc_bits=10, firmware_version=0x0102, device_id=7)),
    ("three_leads_negative_baseline", dict(fs=500.0, gain=1000.0, baseline=-2048, channels=3,
                                           samples_per_frame=16, adc_bits=16, firmware_version=0xFFFF,
                                           device_id=0xFFFFFFFF)),
]

DATA = [
    ("seq0_one_channel", dict(seq=0, samples=[1024, 1030, 1100, 1500, 900, 1000, 1024, 1024, 1020, 1019],
                              channels=1)),
    ("seq_max_lead_off", dict(seq=65535, samples=[4095, 4095, 4095, 4095], channels=1, lead_off=True)),
    ("overflow_flag", dict(seq=1234, samples=[0, 1, 2], channels=1, overflow=True)),
    ("both_flags", dict(seq=4660, samples=[-1, 1], channels=1, lead_off=True, overflow=True)),
    ("int16_extremes", dict(seq=32768, samples=[-32768, 32767, 0, -1, 1, 256, -256], channels=1)),
    ("one_sample", dict(seq=7, samples=[-5], channels=1)),
    ("two_channels", dict(seq=300, samples=[100, -100, 200, -200, 300, -300], channels=2)),
    ("largest_frame", dict(seq=9, samples=[((i * 37) % 4096) - 2048 for i in range(254)], channels=1)),
]

CRC = [("123456789", b"123456789"), ("empty", b""), ("A", b"A"), ("bytes_0_to_255", bytes(range(256))),
       ("marker_only", P.MARKER)]


def stream_cases() -> list[dict]:
    """Framer streams: config + samples (+ flags) -> exact bytes, wrap and header re-sends included."""
    cases = []
    h = P.header_from_values(360.0, 200.0, baseline=1024, samples_per_frame=4, adc_bits=11, device_id=3)
    samples = [1024 + ((i * 53) % 200) - 100 for i in range(27)]
    flags = [P.FLAG_LEAD_OFF if 9 <= i <= 10 else 0 for i in range(27)]
    enc = P.StreamEncoder(h, header_every=8, first_seq=65533)
    data = enc.push_block(samples, flags) + enc.flush()
    cases.append(dict(name="wrap_periodic_header_lead_off", header=_header_dict(h), header_every=8,
                      first_seq=65533, samples=[[s] for s in samples], flags=flags, flush=True, hex=data.hex()))
    h2 = P.header_from_values(250.0, 341.333, channels=2, baseline=512, samples_per_frame=3, adc_bits=10)
    samples2 = [[500 + i, 520 - i] for i in range(13)]
    enc = P.StreamEncoder(h2, header_every=0, first_seq=0)
    data = enc.push_block(samples2) + enc.flush()
    cases.append(dict(name="two_channels_header_once", header=_header_dict(h2), header_every=0, first_seq=0,
                      samples=samples2, flags=[0] * 13, flush=True, hex=data.hex()))
    return cases


def _header_dict(h: P.Header) -> dict:
    return dict(fs_millihz=h.fs_millihz, gain_milli=h.gain_milli, baseline=h.baseline, channels=h.channels,
                samples_per_frame=h.samples_per_frame, adc_bits=h.adc_bits, firmware_version=h.firmware_version,
                device_id=h.device_id)


def _data(seq, samples, **kw) -> bytes:
    return P.encode_data(seq, samples, **kw)


def _flip(frame: bytes, byte: int, bit: int = 0) -> bytes:
    b = bytearray(frame)
    b[byte] ^= 1 << bit
    return bytes(b)


def _frame_raw(version: int, ftype: int, payload: bytes) -> bytes:
    import struct

    body = struct.pack("<BBH", version, ftype, len(payload)) + payload
    return P.MARKER + body + struct.pack("<H", P.crc16_ccitt(body))


def decoder_cases() -> list[dict]:
    """Byte streams with faults whose expected frames and counters are known by construction."""
    hdr = P.encode_header(360.0, 200.0, baseline=1024, samples_per_frame=4, adc_bits=11)
    hdr_b = P.encode_header(360.0, 400.0, baseline=1024, samples_per_frame=4, adc_bits=11)
    d = [_data(i, [1000 + i, 1001 + i, 1002 + i, 1003 + i]) for i in range(6)]
    g5, g7 = bytes([0x11, 0x22, 0x33, 0x44, 0x55]), bytes([0xEC, 0xEC, 0x00, 0x47, 0xFF, 0x47, 0xEC])
    corrupt = _flip(d[1], 12, 3)
    cut = d[2][:9]
    cases = [
        dict(name="clean", parts=[hdr, d[0], d[1], d[2]], frames=["H", 0, 1, 2], counters={}),
        dict(name="garbage_before_and_between", parts=[g5, hdr, g7, d[0], d[1]], frames=["H", 0, 1],
             counters=dict(garbage_bytes=12)),
        dict(name="crc_error_loses_one_frame", parts=[hdr, d[0], corrupt, d[2], d[3]], frames=["H", 0, 2, 3],
             counters=dict(crc_errors=1, garbage_bytes=len(corrupt), seq_gaps=1, lost_frames=1)),
        dict(name="truncated_frame_then_good_ones", parts=[hdr, d[0], d[1], cut, d[3], d[4]],
             frames=["H", 0, 1, 3, 4], counters=dict(crc_errors=1, garbage_bytes=len(cut), seq_gaps=1,
                                                     lost_frames=1)),
        dict(name="seq_wraps_without_gap_then_gap", parts=[hdr, _data(65534, [1]), _data(65535, [2]),
                                                         _data(0, [3]), _data(3, [4])],
             frames=["H", 65534, 65535, 0, 3], counters=dict(seq_gaps=1, lost_frames=2)),
        dict(name="gap_across_wrap", parts=[_data(65533, [1]), _data(2, [2])], frames=[65533, 2],
             counters=dict(seq_gaps=1, lost_frames=4)),
        dict(name="device_restart", parts=[hdr, _data(500, [1]), _data(501, [2]), hdr, _data(0, [3])],
             frames=["H", 500, 501, "H", 0], counters=dict(seq_restarts=1)),
        dict(name="header_change", parts=[hdr, d[0], hdr_b, d[1]], frames=["H", 0, "H", 1],
             counters=dict(header_changes=1)),
        dict(name="dropped_byte_in_frame", parts=[hdr, d[0], d[1][:10] + d[1][11:], d[2]], frames=["H", 0, 2],
             counters=dict(crc_errors=1, garbage_bytes=len(d[1]) - 1, seq_gaps=1, lost_frames=1)),
        dict(name="unsupported_version_skipped", parts=[hdr, _frame_raw(2, 1, b"\x00" * 20), d[0]],
             frames=["H", 0], counters=dict(unsupported_frames=1)),
        dict(name="unknown_type_skipped", parts=[hdr, _frame_raw(1, 9, b"\x01\x02"), d[0]], frames=["H", 0],
             counters=dict(unsupported_frames=1)),
        dict(name="lead_off_and_overflow_flags", parts=[hdr, _data(0, [9, 9], lead_off=True),
                                                       _data(1, [9, 9], overflow=True)],
             frames=["H", 0, 1], counters=dict(overflow_frames=1)),
    ]
    out = []
    for case in cases:
        data = b"".join(case["parts"])
        frames = []
        for f in case["frames"]:
            frames.append({"type": "header"} if f == "H" else {"type": "data", "seq": f})
        counters = dict(case["counters"])
        counters["headers"] = sum(1 for f in case["frames"] if f == "H")
        counters["frames"] = sum(1 for f in case["frames"] if f != "H")
        counters["bytes_in"] = len(data)
        out.append(dict(name=case["name"], hex=data.hex(), frames=frames, counters=counters))
    return out


def build() -> dict:
    """Every vector, as the JSON-ready dict written to :data:`OUT`."""
    headers = []
    for name, kw in HEADERS:
        h = P.header_from_values(**kw)
        headers.append(dict(name=name, fields=_header_dict(h), hex=P.encode_header_frame(h).hex()))
    data = []
    for name, kw in DATA:
        frame = P.encode_data(**kw)
        flags = (P.FLAG_LEAD_OFF if kw.get("lead_off") else 0) | (P.FLAG_OVERFLOW if kw.get("overflow") else 0)
        data.append(dict(name=name, seq=kw["seq"], flags=flags, channels=kw["channels"], samples=kw["samples"],
                         hex=frame.hex()))
    return {
        "protocol": "edge-ecg binary v1",
        "crc": "CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, refin/refout false, xorout 0)",
        "crc_vectors": [dict(name=n, hex=b.hex(), crc=P.crc16_ccitt(b)) for n, b in CRC],
        "header_frames": headers,
        "data_frames": data,
        "framer_streams": stream_cases(),
        "decoder_streams": decoder_cases(),
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
