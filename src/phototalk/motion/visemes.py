"""Phones -> visemes -> smooth mouth controls with coarticulation.

Visemes are articulatory *targets*, not frames. Each phone pulls the mouth towards its
target with a dominance function (Cohen & Massaro 1993, "Modeling coarticulation in
synthetic visual speech"): D(t) = a * exp(-(|t - c| / tau)), wider before the phone's
centre than after, so lips anticipate the next sound (rounding for /uw/ starts during
the preceding consonant). Controls are the dominance-weighted mean of the targets.
Bilabial closure is then enforced as a hard constraint, because a /p b m/ whose lips do
not meet is the error viewers notice first.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ..audio.features import frame_power
from ..audio.io import Speech
from ..audio.tts import espeak_to_arpabet  # noqa: F401  (re-exported: the viseme model's input labels)


class Viseme(enum.Enum):
    """Mouth shapes (the 15-class set common in lip-sync tools, MPEG-4 FAP style)."""

    SIL = "sil"  # rest, lips together
    PP = "PP"  # p b m: lips pressed
    FF = "FF"  # f v: lower lip under the upper teeth
    TH = "TH"  # th dh: tongue tip at the teeth
    DD = "DD"  # t d n l: tongue on the ridge, jaw half closed
    KK = "kk"  # k g ng
    CH = "CH"  # ch jh sh zh: lips pushed forward
    SS = "SS"  # s z: teeth close, lips spread
    RR = "RR"  # r er: slight rounding
    AA = "aa"  # open vowels
    E = "E"  # mid front vowels
    I = "I"  # close front vowels: spread
    O = "O"  # rounded mid vowels
    U = "U"  # rounded close vowels and /w/: pucker


@dataclass(frozen=True)
class Target:
    """open: inner-lip gap in inter-ocular distances; wide: relative width change;
    round: pucker 0..1; tuck: lower lip drawn under the upper teeth 0..1;
    weight: dominance strength (how hard the phone holds its shape)."""

    open: float
    wide: float = 0.0
    round: float = 0.0
    tuck: float = 0.0
    weight: float = 1.0


TARGETS: dict[Viseme, Target] = {
    Viseme.SIL: Target(0.0, 0.0, weight=0.8),
    Viseme.PP: Target(0.0, -0.02, weight=1.0),  # closure itself is enforced below
    Viseme.FF: Target(0.07, 0.0, tuck=1.0, weight=3.0),  # labial: visible, so it resists coarticulation
    Viseme.TH: Target(0.10, 0.02, weight=0.8),
    Viseme.DD: Target(0.11, 0.04, weight=0.5),
    Viseme.KK: Target(0.13, 0.02, weight=0.5),
    Viseme.CH: Target(0.09, -0.12, round=0.5, weight=1.5),
    Viseme.SS: Target(0.05, 0.08, weight=0.9),
    Viseme.RR: Target(0.10, -0.08, round=0.4, weight=0.9),
    Viseme.AA: Target(0.27, 0.04, weight=1.5),
    Viseme.E: Target(0.19, 0.10, weight=1.5),
    Viseme.I: Target(0.10, 0.16, weight=1.5),
    Viseme.O: Target(0.20, -0.14, round=0.8, weight=1.5),  # an oval pushed forward
    Viseme.U: Target(0.09, -0.20, round=1.0, weight=1.8),
}

# ARPAbet (CMUdict, stress stripped) -> viseme. HH takes the shape of its neighbours.
PHONE_TO_VISEME: dict[str, Viseme] = {
    "P": Viseme.PP, "B": Viseme.PP, "M": Viseme.PP,
    "F": Viseme.FF, "V": Viseme.FF,
    "TH": Viseme.TH, "DH": Viseme.TH,
    "T": Viseme.DD, "D": Viseme.DD, "N": Viseme.DD, "L": Viseme.DD,
    "K": Viseme.KK, "G": Viseme.KK, "NG": Viseme.KK, "HH": Viseme.KK,
    "CH": Viseme.CH, "JH": Viseme.CH, "SH": Viseme.CH, "ZH": Viseme.CH,
    "S": Viseme.SS, "Z": Viseme.SS,
    "R": Viseme.RR, "ER": Viseme.RR,
    "AA": Viseme.AA, "AE": Viseme.AA, "AH": Viseme.AA, "AW": Viseme.AA, "AY": Viseme.AA,
    "EH": Viseme.E, "EY": Viseme.E,
    "IH": Viseme.I, "IY": Viseme.I, "Y": Viseme.I,
    "AO": Viseme.O, "OW": Viseme.O, "OY": Viseme.O,
    "UH": Viseme.U, "UW": Viseme.U, "W": Viseme.U,
    "SIL": Viseme.SIL,
}
WEAK = {"HH": 0.15}  # dominance override: /h/ barely constrains the lips

ANTICIPATION = 1.6  # dominance reaches this much further before a phone's centre than after
REACH_S = 0.5  # s; a phone's influence is ignored beyond this distance
# s; extra closure before a bilabial's start and after its end (stops get their silent
# closure from extend_stop_closures; margins here would eat short neighbouring vowels).
CLOSURE_LEAD_S, CLOSURE_LAG_S = 0.0, 0.0
CLOSURE_EASE_S = 0.06  # s; the opening eases over this long before and after a closure
SHORT_PAUSE_S = 0.18  # s; pauses shorter than this inside speech do not close the mouth
# Lip rounding is a dominant feature (Cohen & Massaro): a rounded phone's pucker spreads
# over its unrounded neighbours instead of being averaged away by them, so in the
# rounding channel rounded phones weigh this much more. With plain blending /ow/ reached
# only 0.3-0.58 of pucker between its consonants: a small oval without protrusion.
ROUND_DOMINANCE = 4.0
# Most pucker during a bilabial closure. With the renderer's everted, forward-pushed pout,
# shut lips at 0.45 read 0.07 iod open to MediaPipe on a turned head (test_tts's /b/ of 'Bob').
ROUND_AT_CLOSURE = 0.25


def viseme_of(label: str) -> Viseme:
    """Viseme for an ARPAbet phone label (stress digits ignored); unknown -> SIL."""
    return PHONE_TO_VISEME.get(label.upper().rstrip("012"), Viseme.SIL)


STOP_LOOKBACK_S = 0.12  # s; longest silent closure searched for before a stop's timestamp
# s; a /p b m/ after a pause takes at least this long of it, closure included (a /b/'s
# closure lasts 60-100 ms; as a floor on the whole phone, extending twice changes nothing)
AFTER_PAUSE_S = 0.12


def extend_stop_closures(phones, y: np.ndarray, sr: int, *, quiet_frac: float = 0.12) -> list[tuple[str, float, float]]:
    """Move the start of each /p b/ back over the quiet stretch before it (its silent
    closure, a pause), and that of an /m/ into a pause before it, as far as
    STOP_LOOKBACK_S (into a pause, until the phone lasts AFTER_PAUSE_S). Timings from synthesis (and often from alignment) mark the burst, but the
    lips shut when the sound stops: that is the moment a viewer checks.

    phones: [(label, start_s, end_s)]; y: (n,) float mono samples at sr Hz.
    quiet_frac: level, relative to the loudest 50 ms before, below which the lips count
    as shut (clean synthetic speech can use a higher one: its level falls only as the
    lips close).
    """
    hop = max(1, int(0.005 * sr))  # 5 ms envelope
    n = len(y) // hop
    if n < 4:
        return list(phones)
    env = np.sqrt(frame_power(y, hop))
    out = []
    for k, (label, a, b) in enumerate(phones):
        core = label.upper().rstrip("012")
        # An /m/ only after a pause: the lips are shut there before its murmur starts,
        # while a quiet /f v/ or /t/ before it has its own shape to show.
        after_pause = bool(out) and viseme_of(out[-1][0]) is Viseme.SIL
        if core in ("P", "B") and out or core == "M" and after_pause:
            i = min(int(a * sr / hop), n - 1)
            lo = max(0, i - int(STOP_LOOKBACK_S * sr / hop))
            before = env[lo:i]
            if len(before):
                peak = max(float(env[max(0, lo - 10):i].max()), 1e-6)
                quiet = before < quiet_frac * peak
                j = len(before)
                while j > 0 and quiet[j - 1]:
                    j -= 1
                start = (lo + j) * hop / sr
                # Never swallow more than half of the previous sound; a pause is no sound:
                # the lips shut in it before a word-initial /p b m/ (espeak's pause before
                # "but" left the /b/ 33 ms, less than a frame at 25 fps).
                floor = out[-1][1] + 0.5 * (out[-1][2] - out[-1][1])
                m = len(out)
                while m > 0 and viseme_of(out[m - 1][0]) is Viseme.SIL:
                    m -= 1
                if m < len(out):
                    floor = max(out[m - 1][2] if m > 0 else 0.0, b - AFTER_PAUSE_S)
                start = max(start, floor)
                if start < a:
                    while len(out) > max(m, 1) and out[-1][1] >= start:
                        out.pop()  # a pause wholly inside the closure
                    pl, pa, _ = out[-1]
                    out[-1] = (pl, pa, start)
                    a = start
        out.append((label, a, b))
    return out


# Stops and nasals whose place of articulation a phone recogniser cannot be trusted with.
# On real speech (bench/phones_eval.py) allphone recognition returns more than half of
# the true /p b m/ as one of these, and a /b/ or /m/ whose lips do not meet is the error
# viewers notice first, while lips touching briefly in a /t/ or /n/ (the jaw is nearly
# closed there anyway) is hardly seen. A recognised /ng/ is left out: on 150 real prompts
# only 1 % of them were a /p b m/ (against 6-16 % for the others).
UNCERTAIN_PLACE = frozenset({"T", "D", "N", "K", "G"})
UNCERTAIN_CLOSURE_S = 0.04  # s; half-length of the lip contact put at their centre
# dB; a closure must show as a dip in level this deep against the loudest moment within
# UNCERTAIN_CONTEXT_S around it (lips or tongue shutting the tract silence it), so the
# labels a recogniser scatters over a sustained sung vowel do not make the lips flap.
UNCERTAIN_DIP_DB = 9.0
UNCERTAIN_CONTEXT_S = 0.15


def close_uncertain_stops(phones, y: np.ndarray, sr: int, *, half_s: float = UNCERTAIN_CLOSURE_S,
                          dip_db: float = UNCERTAIN_DIP_DB) -> list[tuple[str, float, float]]:
    """For recognised (not aligned) phones: give every stop or nasal whose place is
    uncertain, and whose sound really dips, a brief bilabial contact at its centre, so a
    misheard /b/ or /m/ still closes the lips. The rest of the phone keeps its label.

    phones: [(label, start_s, end_s)] sorted; y: (n,) float mono samples at sr Hz.
    Returns a new list of the same form.
    """
    hop = max(1, int(0.01 * sr))  # 10 ms level
    n = len(y) // hop
    if n < 2:
        return list(phones)
    level = 10 * np.log10(frame_power(y, hop) + 1e-12)
    ctx = int(UNCERTAIN_CONTEXT_S / 0.01)
    out = []
    for label, a, b in phones:
        i0 = min(int(a / 0.01), n - 1)
        i1 = min(max(int(b / 0.01), i0 + 1), n)
        if label.upper().rstrip("012") not in UNCERTAIN_PLACE or \
                level[max(0, i0 - ctx):i1 + ctx].max() - level[i0:i1].min() < dip_db:
            out.append((label, a, b))
            continue
        c = (a + b) / 2
        lo, hi = max(a, c - half_s), min(b, c + half_s)
        if lo > a:
            out.append((label, a, lo))
        out.append(("M", lo, hi))
        if hi < b:
            out.append((label, hi, b))
    return out


def seconds_to(mask: np.ndarray, fps: float) -> np.ndarray:
    """(n,) float seconds from each frame to the nearest True frame of ``mask`` ((n,)
    bool) at ``fps``; inf everywhere when it has none."""
    idx = np.flatnonzero(mask)
    n = len(mask)
    if not len(idx):
        return np.full(n, np.inf)
    k = np.clip(np.searchsorted(idx, np.arange(n)), 0, len(idx) - 1)
    d = np.minimum(np.abs(np.arange(n) - idx[k]), np.abs(np.arange(n) - idx[np.maximum(k - 1, 0)]))
    return d / fps


def coarticulate(phones, fps: float, n: int) -> dict[str, np.ndarray]:
    """Blend viseme targets of ``phones`` ([(label, start_s, end_s)], sorted) into
    per-frame controls for frames at t = i / fps, i < n.

    Returns {'mouth_open', 'mouth_wide', 'mouth_round', 'lip_tuck'}: (n,) float32 each,
    'closed': (n,) bool, the frames held shut for bilabials, and 'labiodental': (n,) bool,
    the frames of /f v/ (at least the one nearest each centre), where the lower lip must
    touch the upper teeth (see ``touch_labiodentals``).
    """
    t = np.arange(n) / fps
    keys = ("open", "wide", "round", "tuck")
    acc = np.zeros((4, n))
    wsum = np.full(n, 1e-6)
    wsum_round = np.full(n, 1e-6)  # the rounding channel's own weights (ROUND_DOMINANCE)
    for k, (label, a, b) in enumerate(phones):
        v = viseme_of(label)
        tg = TARGETS[v]
        dur = max(b - a, 1e-3)
        weight = WEAK.get(label.upper().rstrip("012"), tg.weight)
        if v is Viseme.SIL:
            inner = 0 < k < len(phones) - 1
            if inner and dur < SHORT_PAUSE_S:
                weight = 0.1  # a breath between words: lips stay loosely apart
        c = (a + b) / 2
        tau = min(max(dur / 2, 0.02), 0.08)  # s; coarticulation reaches ~100-200 ms, not a whole pause
        i0 = max(0, int((c - REACH_S) * fps))
        i1 = min(n, int((c + REACH_S) * fps) + 2)
        if i0 >= i1:
            continue
        dt = t[i0:i1] - c
        # Inside the phone the target holds fully; outside it decays, slower before it.
        dist = np.maximum(np.abs(dt) - 0.5 * dur, 0.0)
        scale = np.where(dt < 0, ANTICIPATION * tau, tau)
        d = weight * np.exp(-dist / scale)
        wsum[i0:i1] += d
        # rest (SIL) weighs as much, so the lips relax from a pucker when speech stops
        d_round = d * (ROUND_DOMINANCE if tg.round > 0 or v is Viseme.SIL else 1.0)
        wsum_round[i0:i1] += d_round
        for j, key in enumerate(keys):
            acc[j, i0:i1] += (d_round if key == "round" else d) * getattr(tg, key)
    out = {name: (acc[j] / (wsum_round if name == "mouth_round" else wsum)).astype(np.float32)
           for j, name in enumerate(("mouth_open", "mouth_wide", "mouth_round", "lip_tuck"))}
    # Hard constraint: lips stay shut through every bilabial (the acoustic segment of a
    # stop is its closure plus the burst, of a nasal its whole length), and at least
    # through the frame nearest its centre.
    closed = np.zeros(n, bool)
    labio = np.zeros(n, bool)
    for label, a, b in phones:
        v = viseme_of(label)
        ic = int(round((a + b) / 2 * fps))
        if v is Viseme.PP:
            i0 = int(np.ceil((a - CLOSURE_LEAD_S) * fps))
            i1 = int(np.floor((b + CLOSURE_LAG_S) * fps))
            lo, hi = min(i0, ic), max(i1, ic)
            closed[max(lo, 0):min(hi + 1, n)] = True
        elif v is Viseme.FF:
            # The lip meets the teeth in the middle of the frication, not at its edges:
            # frames at least half a frame inside the phone, and the one nearest its centre.
            i0 = int(np.ceil(a * fps + 0.5))
            i1 = int(np.floor(b * fps - 0.5))
            lo, hi = min(i0, ic), max(i1, ic)
            labio[max(lo, 0):min(hi + 1, n)] = True
    out["mouth_open"][closed] = 0.0
    # Lips pressed together for /p b m/ protrude less than a free pucker: a /b/ before
    # /uw/ shows its rounding at the release. (Pushed-out lips drawn shut at full pucker
    # read as slightly parted to MediaPipe: Mandarin "bu" 0.05 iod.)
    out["mouth_round"][closed] = np.minimum(out["mouth_round"][closed], ROUND_AT_CLOSURE)
    # Lips take a moment to meet and to part: ease the opening within CLOSURE_EASE_S of a
    # closure, so it does not jump between a wide vowel and shut in one frame.
    if closed.any() and not closed.all():
        dist = seconds_to(closed, fps)
        out["mouth_open"] *= np.clip(0.25 + 0.75 * dist / CLOSURE_EASE_S, 0.0, 1.0).astype(np.float32)
    out["closed"] = closed
    out["labiodental"] = labio & ~closed
    return out


# iod; the widest lip gap of an /f v/: the lower lip's inner edge sits on the upper
# incisors (drawn UPPER_TEETH_H = 0.10 iod long), so a wider gap shows a dark slot
# between teeth and lip instead of contact (issue 13). Coarticulation with open vowels
# and the loudness gain used to leave 0.08-0.13 iod at the centre of /f v/.
LABIODENTAL_OPEN_MAX = 0.05
LABIODENTAL_TUCK_MIN = 0.9  # the lower lip is drawn in under the teeth through the whole phone


def touch_labiodentals(ctl: dict[str, np.ndarray], labiodental: np.ndarray) -> None:
    """Make every /f v/ frame (``labiodental``, (n,) bool) a lip-teeth contact, in place on
    the controls ``ctl`` ('mouth_open', 'lip_tuck': (n,) float32): the opening capped at
    LABIODENTAL_OPEN_MAX, the tuck at least LABIODENTAL_TUCK_MIN. Call it after any gain
    on the opening, as the last word on those frames (like the bilabial closure)."""
    ctl["mouth_open"][labiodental] = np.minimum(ctl["mouth_open"][labiodental], LABIODENTAL_OPEN_MAX)
    ctl["lip_tuck"][labiodental] = np.maximum(ctl["lip_tuck"][labiodental], LABIODENTAL_TUCK_MIN)


def phones_for_lips(speech: Speech, transcript: str | None = None,
                    model: str | None = None) -> list[tuple[str, float, float]]:
    """``phones_for`` as [(label, start_s, end_s)] for the mouth: where the phones are
    allphone guesses, every stop or nasal whose sound dips gets a brief bilabial contact
    (visemes.close_uncertain_stops), so a misheard /b/ or /m/ still closes the lips."""
    from ..audio.phones import phones_with_words

    rec = phones_with_words(speech, transcript, model)
    phones = [(p.label, p.start_s, p.end_s) for p in rec.phones]
    if not rec.guessed:
        return phones
    closed = close_uncertain_stops(phones, speech.samples, speech.sr)
    return sorted([p for p in closed if _within(p, rec.guessed)] + [p for p in phones if not _within(p, rec.guessed)],
                  key=lambda p: p[1])


def _within(p: tuple[str, float, float], spans: list[tuple[float, float]]) -> bool:
    """Whether phone ``p``'s centre lies in one of ``spans``."""
    c = (p[1] + p[2]) / 2
    return any(a <= c < b for a, b in spans)
