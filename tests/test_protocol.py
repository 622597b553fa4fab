"""The binary protocol's Python side: encoders and FrameDecoder, against the shared byte vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_ecg.stream import protocol as P

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "firmware_harness" / "vectors" / "protocol_v1.json")
                     .read_text())


def crc16_bitwise(data: bytes) -> int:
    """Reference CRC-16/CCITT-FALSE, written out bit by bit (independent of binascii)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def header_of(fields: dict) -> P.Header:
    return P.Header(**fields)


def decode_all(data: bytes, pieces=None) -> tuple[list, P.FrameDecoder]:
    dec = P.FrameDecoder()
    out = []
    if pieces is None:
        out += dec.feed(data)
    else:
        start = 0
        for cut in list(pieces) + [len(data)]:
            out += dec.feed(data[start:cut])
            start = cut
    return out, dec


def summary(frames) -> list[dict]:
    return [{"type": "header"} if isinstance(f, P.Header) else {"type": "data", "seq": f.seq} for f in frames]


def test_crc_check_value_and_reference():
    assert P.crc16_ccitt(b"123456789") == 0x29B1
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 31, 200):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert P.crc16_ccitt(data) == crc16_bitwise(data)
    assert P.crc16_ccitt(b"456789", P.crc16_ccitt(b"123")) == 0x29B1


@pytest.mark.parametrize("vec", VECTORS["crc_vectors"], ids=lambda v: v["name"])
def test_crc_vectors(vec):
    data = bytes.fromhex(vec["hex"])
    assert P.crc16_ccitt(data) == vec["crc"] == crc16_bitwise(data)


@pytest.mark.parametrize("vec", VECTORS["header_frames"], ids=lambda v: v["name"])
def test_header_vectors_encode_and_decode(vec):
    header = header_of(vec["fields"])
    frame = bytes.fromhex(vec["hex"])
    assert P.encode_header_frame(header) == frame
    assert len(frame) == 28
    frames, dec = decode_all(frame)
    assert frames == [header]
    assert dec.header == header and dec.garbage_bytes == 0


def test_encode_header_from_physical_units():
    frame = P.encode_header(360.003, 341.333, channels=1, baseline=512, samples_per_frame=8, adc_bits=10,
                            firmware_version=0x0102, device_id=7)
    vec = {v["name"]: v for v in VECTORS["header_frames"]}["uno_360hz_timer_rounding"]
    assert frame.hex() == vec["hex"]
    header = P.FrameDecoder().feed(frame)[0]
    assert header.fs == pytest.approx(360.003) and header.gain == pytest.approx(341.333)
    counts = np.array([512, 853, 171])
    assert np.allclose(header.to_mv(counts), [0.0, 1.0, -1.0], atol=2e-3)


@pytest.mark.parametrize("vec", VECTORS["data_frames"], ids=lambda v: v["name"])
def test_data_vectors_encode_and_decode(vec):
    frame = bytes.fromhex(vec["hex"])
    assert P.encode_data(vec["seq"], vec["samples"], vec["channels"], flags=vec["flags"]) == frame
    (got,), dec = decode_all(frame)
    assert got.seq == vec["seq"] and got.flags == vec["flags"]
    assert got.samples.dtype == np.int16
    assert got.samples.shape == (len(vec["samples"]) // vec["channels"], vec["channels"])
    assert got.samples.reshape(-1).tolist() == vec["samples"]
    assert got.lead_off == bool(vec["flags"] & P.FLAG_LEAD_OFF)
    assert got.overflow == bool(vec["flags"] & P.FLAG_OVERFLOW)


@pytest.mark.parametrize("vec", VECTORS["framer_streams"], ids=lambda v: v["name"])
def test_stream_encoder_vectors(vec):
    enc = P.StreamEncoder(header_of(vec["header"]), header_every=vec["header_every"], first_seq=vec["first_seq"])
    data = enc.push_block(np.array(vec["samples"]), vec["flags"])
    if vec["flush"]:
        data += enc.flush()
    assert data.hex() == vec["hex"]


@pytest.mark.parametrize("vec", VECTORS["decoder_streams"], ids=lambda v: v["name"])
def test_decoder_vectors_whole_bytewise_and_every_split(vec):
    data = bytes.fromhex(vec["hex"])
    expected = {name: 0 for name in P.FrameDecoder().stats()}
    expected.update(vec["counters"])
    frames, dec = decode_all(data)
    assert summary(frames) == vec["frames"]
    assert dec.stats() == expected
    frames, dec = decode_all(data, pieces=range(1, len(data)))
    assert summary(frames) == vec["frames"] and dec.stats() == expected
    for cut in range(len(data) + 1):
        frames, dec = decode_all(data, pieces=[cut])
        assert summary(frames) == vec["frames"], cut
        assert dec.stats() == expected, cut


def test_every_pair_of_split_points_gives_the_same_frames():
    data = P.encode_header(250, 200) + P.encode_data(1, [1, 2, 3]) + P.encode_data(2, [4, 5, 6])
    reference, _ = decode_all(data)
    assert len(reference) == 3
    for a in range(len(data) + 1):
        for b in range(a, len(data) + 1):
            frames, dec = decode_all(data, pieces=[a, b])
            assert summary(frames) == summary(reference)
            assert [f.samples.tolist() for f in frames[1:]] == [[[1], [2], [3]], [[4], [5], [6]]]
            assert dec.garbage_bytes == 0 and dec.buffered == 0


def _stream(n_frames: int, first_seq: int = 0, seed: int = 0):
    rng = np.random.default_rng(seed)
    header = P.header_from_values(360, 200, baseline=1024, samples_per_frame=10)
    sent = {}
    parts = [P.encode_header_frame(header)]
    for i in range(n_frames):
        seq = (first_seq + i) & 0xFFFF
        samples = rng.integers(0, 4096, 10)
        sent[seq] = samples
        parts.append(P.encode_data(seq, samples))
    return parts, sent


def test_random_garbage_never_raises_and_yields_nothing():
    rng = np.random.default_rng(2)
    dec = P.FrameDecoder()
    data = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    pos, frames = 0, []
    while pos < len(data):
        step = int(rng.integers(1, 3000))
        frames += dec.feed(data[pos:pos + step])
        pos += step
    assert frames == []
    assert dec.garbage_bytes + dec.buffered == len(data)
    assert dec.buffered <= P.PREFIX_SIZE + P.MAX_PAYLOAD + P.CRC_SIZE


def test_frames_are_recovered_from_interleaved_garbage():
    parts, sent = _stream(300)
    rng = np.random.default_rng(3)
    noisy, inserted = [], 0
    for part in parts:
        junk = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
        inserted += len(junk)
        noisy += [junk, part]
    frames, dec = decode_all(b"".join(noisy))
    data = [f for f in frames if isinstance(f, P.DataFrame)]
    assert [f.seq for f in data] == list(range(300))
    assert all(np.array_equal(f.samples[:, 0], sent[f.seq]) for f in data)
    assert dec.garbage_bytes == inserted
    assert dec.seq_gaps == 0 and dec.lost_frames == 0


def test_bit_flips_are_caught_by_the_crc_and_counted_as_gaps():
    parts, sent = _stream(500, first_seq=65400, seed=4)
    data = bytearray(b"".join(parts))
    rng = np.random.default_rng(5)
    for bit in rng.choice(len(data) * 8, size=60, replace=False):
        data[bit // 8] ^= 1 << (bit % 8)
    frames, dec = decode_all(bytes(data), pieces=range(7, len(data), 97))
    got = [f for f in frames if isinstance(f, P.DataFrame)]
    assert dec.crc_errors > 0
    assert 400 < len(got) < 500
    for f in got:  # nothing corrupted gets through
        assert np.array_equal(f.samples[:, 0], sent[f.seq])
    lost_inside = dec.lost_frames
    first, last = got[0].seq, got[-1].seq
    assert len(got) + lost_inside == ((last - first) & 0xFFFF) + 1
    assert sum(max(f.lost_before, 0) for f in got) == dec.lost_frames


def test_sequence_wrap_is_not_a_gap():
    parts, _ = _stream(20, first_seq=65530)
    frames, dec = decode_all(b"".join(parts))
    seqs = [f.seq for f in frames if isinstance(f, P.DataFrame)]
    assert seqs == [(65530 + i) & 0xFFFF for i in range(20)]
    assert dec.seq_gaps == 0 and dec.lost_frames == 0 and dec.seq_restarts == 0


def test_gap_across_wrap_reports_lost_frames_on_the_frame():
    frames, dec = decode_all(P.encode_data(65534, [1]) + P.encode_data(3, [2]))
    assert [f.lost_before for f in frames] == [0, 4]
    assert dec.lost_frames == 4 and dec.seq_gaps == 1


def test_stream_encoder_sends_header_first_and_every_second():
    header = P.header_from_values(250, 200, samples_per_frame=10)
    enc = P.StreamEncoder(header)
    data = enc.push_block(np.arange(2500) % 4096)
    frames, dec = decode_all(data)
    kinds = ["H" if isinstance(f, P.Header) else "D" for f in frames]
    assert kinds.count("D") == 250
    assert [i for i, k in enumerate(kinds) if k == "H"] == [0, 26, 52, 78, 104, 130, 156, 182, 208, 234]
    samples = np.concatenate([f.samples[:, 0] for f in frames if isinstance(f, P.DataFrame)])
    assert np.array_equal(samples, np.arange(2500) % 4096)
    assert dec.headers == 10 and dec.header_changes == 0


def test_stream_encoder_or_s_flags_within_a_frame():
    enc = P.StreamEncoder(P.header_from_values(250, 200, samples_per_frame=4), header_every=0)
    flags = [0, P.FLAG_LEAD_OFF, 0, 0, 0, 0, 0, P.FLAG_OVERFLOW]
    frames, dec = decode_all(enc.push_block(np.zeros(8, int), flags))
    data = frames[1:]
    assert [f.lead_off for f in data] == [True, False]
    assert [f.overflow for f in data] == [False, True]
    assert dec.overflow_frames == 1


def test_multichannel_frames_keep_sample_order():
    samples = np.arange(30).reshape(10, 3)
    (frame,), _ = decode_all(P.encode_data(5, samples))
    assert frame.channels == 3 and len(frame) == 10
    assert np.array_equal(frame.samples, samples)
    (frame,), _ = decode_all(P.encode_data(5, samples.reshape(-1), channels=3))
    assert np.array_equal(frame.samples, samples)


def test_data_with_wrong_channel_count_for_the_header_is_malformed():
    frames, dec = decode_all(P.encode_header(250, 200, channels=2) + P.encode_data(0, [[1], [2]]))
    assert len(frames) == 1 and dec.malformed_frames == 1


@pytest.mark.parametrize("kwargs", [
    dict(seq=0, samples=[40000]),
    dict(seq=0, samples=[-40000]),
    dict(seq=0, samples=[]),
    dict(seq=0, samples=list(range(255))),
    dict(seq=0, samples=[1, 2, 3], channels=2),
    dict(seq=0, samples=[1.5]),
])
def test_encode_data_rejects_what_does_not_fit(kwargs):
    with pytest.raises(ValueError):
        P.encode_data(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(fs=0, gain=200), dict(fs=360, gain=0), dict(fs=360, gain=200, channels=0),
                                    dict(fs=360, gain=200, channels=8, samples_per_frame=40)])
def test_encode_header_rejects_impossible_settings(kwargs):
    with pytest.raises(ValueError):
        P.encode_header(**kwargs)


def test_claimed_oversize_length_is_skipped_quickly():
    fake = P.MARKER + bytes([1, 2]) + (2000).to_bytes(2, "little")
    frames, dec = decode_all(fake + P.encode_data(0, [1, 2]))
    assert [f.seq for f in frames] == [0]
    assert dec.garbage_bytes == len(fake) and dec.crc_errors == 0
