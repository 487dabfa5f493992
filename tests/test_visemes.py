"""Phones -> visemes -> coarticulated controls, on synthetic phone sequences."""
from __future__ import annotations

import numpy as np

from phototalk.motion.visemes import TARGETS, Viseme, coarticulate, viseme_of

FPS = 25


def frame(t):
    return int(round(t * FPS))


def test_phone_to_viseme_classes():
    assert viseme_of("M") is viseme_of("b") is viseme_of("P") is Viseme.PP
    assert viseme_of("AA1") is Viseme.AA and viseme_of("UW") is Viseme.U and viseme_of("F") is Viseme.FF
    assert viseme_of("???") is Viseme.SIL


def test_bilabials_close_and_vowels_open_even_when_short():
    # "ma-ma-pa": 60 ms consonants between 90 ms vowels
    phones, t = [("SIL", 0.0, 0.3)], 0.3
    for c in ("M", "M", "P"):
        phones += [(c, t, t + 0.06), ("AA", t + 0.06, t + 0.15)]
        t += 0.15
    phones.append(("SIL", t, t + 0.4))
    ctl = coarticulate(phones, FPS, frame(t + 0.4))
    for label, a, b in phones:
        mid = ctl["mouth_open"][frame((a + b) / 2)]
        if label in ("M", "P"):
            assert mid == 0.0
        elif label == "AA":
            assert mid > 0.12
    assert ctl["mouth_open"][:frame(0.15)].max() < 0.02  # leading silence: closed
    assert ctl["mouth_open"][-3:].max() < 0.02


def test_rounding_is_anticipated():
    phones = [("SIL", 0.0, 0.3), ("T", 0.3, 0.4), ("UW", 0.4, 0.6), ("SIL", 0.6, 1.0)]
    ctl = coarticulate(phones, FPS, 25)
    r = ctl["mouth_round"]
    assert r[frame(0.5)] > 0.7  # rounded vowel: puckered
    assert r[frame(0.36)] > 0.3  # already rounding during the /t/ before it


def test_shapes_differ_between_visemes():
    assert TARGETS[Viseme.I].wide > TARGETS[Viseme.AA].wide > TARGETS[Viseme.U].wide
    assert TARGETS[Viseme.AA].open > TARGETS[Viseme.E].open > TARGETS[Viseme.I].open > TARGETS[Viseme.PP].open
    assert TARGETS[Viseme.FF].tuck == 1.0


def test_espeak_mnemonics_map_to_arpabet():
    from phototalk.motion.visemes import espeak_to_arpabet as e2a

    cases = {"'oU": "OW", "m": "M", "b": "B", "p": "P", "f": "F", "tS": "CH", "'aI": "AY", "u:": "UW",
             "_:": "SIL", "'0": "AO", "@L": "L", "a#": "AA", "3:": "ER", "'E": "EH", "i:": "IY", "N": "NG"}
    for m, want in cases.items():
        assert e2a(m) == want, m


def test_espeak_speech_gets_visemes_in_time():
    from phototalk.audio.tts import synthesize
    from phototalk.motion.visemes import espeak_to_arpabet

    s = synthesize("Bob may map a movie.")
    labels = [espeak_to_arpabet(p) for p, _, _ in s.phones]
    assert labels.count("B") + labels.count("M") + labels.count("P") >= 5
    ctl = coarticulate([(espeak_to_arpabet(p), a, b) for p, a, b in s.phones], FPS, int(s.duration_s * FPS))
    closed = [ctl["mouth_open"][frame((a + b) / 2)] for p, a, b in s.phones if espeak_to_arpabet(p) in "PBM"]
    assert max(closed) == 0.0


def test_recognised_stops_close_only_where_the_sound_dips():
    from phototalk.motion.visemes import close_uncertain_stops

    sr = 16000
    t = np.arange(int(1.2 * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t)
    y[int(0.50 * sr):int(0.58 * sr)] *= 0.01  # a stop closure: 40 dB down for 80 ms
    phones = [("AA", 0.0, 0.5), ("D", 0.5, 0.58), ("AA", 0.58, 0.9), ("N", 0.9, 1.0), ("AA", 1.0, 1.2)]
    out = close_uncertain_stops(phones, y, sr)
    # the dipping /d/ gets a lip contact at its centre, the /n/ inside a steady tone does not
    assert [(p[0], round(p[1], 3), round(p[2], 3)) for p in out if p[0] == "M"] == [("M", 0.5, 0.58)]
    assert ("N", 0.9, 1.0) in out
    # the cover stays gapless and ordered
    assert all(abs(a[2] - b[1]) < 1e-9 for a, b in zip(out, out[1:]))
    ctl = coarticulate(out, FPS, frame(1.2))
    assert ctl["mouth_open"][frame(0.54)] == 0.0 and ctl["mouth_open"][frame(0.95)] > 0.05
