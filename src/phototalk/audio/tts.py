"""Text to speech through libespeak-ng's C API (ctypes), with per-phoneme timing.

The library and its data come from the ``espeakng-loader`` wheel, so no system package
is needed. espeak keeps process-global state and is not reentrant, so every use of it
holds one module lock.
"""
from __future__ import annotations

import _ctypes
import ctypes as C
import os
import re
import threading
from dataclasses import dataclass

import numpy as np

from ..core import job
from ..errors import InputError, PhototalkError
from ..interrupt import check as check_stop
from ..interrupt import no_raise

# Values from espeak-ng's speak_lib.h (API revision 12, libespeak-ng 1.52).
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # callback runs on the calling thread; espeak_Synth returns when done
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000  # without it a missing data dir makes espeak call exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1  # espeak_PARAMETER espeakRATE
_EV_WORD, _EV_PHONEME = 1, 7
_EE_OK = 0
RATE_MIN_WPM, RATE_MAX_WPM = 80, 450  # espeak silently clamps outside this; we refuse instead


class _EventId(C.Union):
    _fields_ = [("number", C.c_int), ("name", C.c_char_p), ("string", C.c_char * 8)]


class _Event(C.Structure):  # espeak_EVENT: 40 bytes on x86_64 (6 ints, pointer, 8-byte union)
    _fields_ = [
        ("type", C.c_int),
        ("unique_identifier", C.c_uint),
        ("text_position", C.c_int),  # characters, 1-based
        ("length", C.c_int),
        ("audio_position", C.c_int),  # ms from the start of this espeak_Synth call
        ("sample", C.c_int),
        ("user_data", C.c_void_p),
        ("id", _EventId),
    ]


class _Voice(C.Structure):  # espeak_VOICE
    _fields_ = [
        ("name", C.c_char_p),
        ("languages", C.c_void_p),  # packed (priority byte, NUL-terminated code)*, then a 0 byte
        ("identifier", C.c_char_p),
        ("gender", C.c_ubyte),
        ("age", C.c_ubyte),
        ("variant", C.c_ubyte),
        ("xx1", C.c_ubyte),
        ("score", C.c_int),
        ("spare", C.c_void_p),
    ]


_Callback = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_short), C.c_int, C.POINTER(_Event))


@dataclass(frozen=True)
class Synthesis:
    """Speech audio plus the timing espeak reported while producing it.

    samples: (n,) float32 in [-1, 1], mono, at ``sr`` Hz.
    sr: sample rate in Hz (espeak's native rate, 22050).
    phones: (mnemonic, start_s, end_s) in time order, contiguous from 0 s to the end of
        the audio. Mnemonics are espeak's ASCII phoneme names, stress marks included
        (``'oU``); names starting with ``_`` (``_``, ``_:``, ``_|``) are pauses. Times are
        whole ms as espeak reports them. Zero-length events are dropped and a
        leading ``_`` covers any silence before the first phoneme.
    words: (text fragment, start_s) for each word espeak spoke, in time order; coarse for
        unsegmented scripts (Japanese reports the whole run for each word).
    """

    samples: np.ndarray
    sr: int
    phones: list[tuple[str, float, float]]
    words: list[tuple[str, float]]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sr


class _Espeak:
    """One freshly loaded, initialised copy of libespeak-ng, plus the buffers its callback fills.

    espeak's wave generator keeps state that no API call resets (a pitch-flutter phase and a
    glottal-cycle counter, both function statics), so a library that stays loaded makes the
    same text sound slightly different on every call. Loading it per synthesis costs ~6 ms
    and makes the output a pure function of the input.
    """

    def __init__(self) -> None:
        try:
            import espeakng_loader

            lib = C.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (ImportError, OSError, RuntimeError) as e:
            raise PhototalkError(f"cannot load libespeak-ng (reinstall espeakng-loader): {e}") from None
        lib.espeak_Initialize.argtypes = [C.c_int, C.c_int, C.c_char_p, C.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetVoiceByName.argtypes = [C.c_char_p]
        lib.espeak_SetParameter.argtypes = [C.c_int, C.c_int, C.c_int]
        lib.espeak_Synth.argtypes = [C.c_char_p, C.c_size_t, C.c_uint, C.c_int, C.c_uint,
                                     C.c_uint, C.c_void_p, C.c_void_p]
        lib.espeak_ListVoices.argtypes = [C.c_void_p]
        lib.espeak_ListVoices.restype = C.POINTER(C.POINTER(_Voice))
        self.lib = lib
        self.sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data),
                                        _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if self.sr <= 0:
            self.close()
            raise PhototalkError(f"libespeak-ng failed to initialise with data at {data}")
        self._job = job.current()  # the callback runs inside C: it looks at this job's token, never raises
        self._callback = _Callback(self._on_synth)  # kept referenced: espeak holds the raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, int, int, str]] = []

    def close(self) -> None:
        if self.sr > 0:
            self.lib.espeak_Terminate()
        _ctypes.dlclose(self.lib._handle)  # unloads it, so the next load starts from clean statics

    def __enter__(self) -> _Espeak:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @no_raise  # a stop signal here is raised by synthesize() once espeak returns (interrupt.check)
    def _on_synth(self, wav, n, events) -> int:
        if wav and n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())  # espeak reuses the buffer
        i = 0
        while events[i].type != 0:  # list ends with espeakEVENT_LIST_TERMINATED
            e = events[i]
            name = e.id.string.decode("utf-8", "replace") if e.type == _EV_PHONEME else ""
            self.events.append((e.type, e.audio_position, e.text_position, e.length, name))
            i += 1
        if self._job is not None and self._job.token is not None and self._job.token.cancelled:
            return 1  # 1 = abort: espeak_Synth returns within one buffer (~60 ms of audio); checked below
        return 0  # 0 = keep synthesising

    def voices(self) -> list[tuple[str, list[tuple[int, str]]]]:
        """(identifier, [(priority, language)]) for every installed voice; lower priority wins."""
        out = []
        table = self.lib.espeak_ListVoices(None)
        for i in range(10_000):
            if not table[i]:
                break
            v, langs = table[i].contents, []
            p = v.languages
            while p and (prio := C.c_ubyte.from_address(p).value):
                code = C.string_at(p + 1)
                langs.append((prio, code.decode()))
                p += len(code) + 2
            out.append((v.identifier.decode(), langs))
        return out


_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")  # CJK ideographs
_lock = threading.Lock()  # espeak is process-global and not reentrant
_voice_table: list[tuple[str, list[tuple[int, str]]]] | None = None


def _voices() -> list[tuple[str, list[tuple[int, str]]]]:  # caller holds _lock
    global _voice_table
    if _voice_table is None:
        with _Espeak() as es:
            _voice_table = es.voices()
    return _voice_table


def _resolve(voice: str) -> str:  # caller holds _lock
    """Map an identifier ("gmw/en-US"), its file name ("en-US") or a language code
    ("en-gb", "zh") to an installed voice identifier; SetVoiceByName alone misses
    language codes that are not file names, such as "en-gb"."""
    want, table = voice.strip().lower(), _voices()
    for ident, _ in table:
        if want in (ident.lower(), ident.rsplit("/", 1)[-1].lower()):
            return ident
    best = min(((prio, k) for k, (_, langs) in enumerate(table)
                for prio, code in langs if code == want), default=None)
    if best is None:
        raise InputError(f"unknown voice '{voice}'; run `phototalk voices` to list them")
    return table[best[1]][0]


def resolve_voice(voice: str) -> str:
    """The installed voice identifier that ``voice`` (a language code, file name or
    identifier) names; InputError pointing at `phototalk voices` when none does."""
    with _lock:
        return _resolve(voice)


def check_script(text: str, voice_id: str) -> None:
    """InputError when the voice ``voice_id`` (an identifier) cannot read ``text``'s script."""
    if voice_id.lower().endswith("/ja") and (kanji := _KANJI.search(text)):
        # espeak's Japanese dictionary has no kanji: it would say "Chinese letter" in English
        raise InputError(f"the Japanese voice reads kana only: write '{kanji.group()}' in hiragana or katakana")


def voice_languages() -> list[tuple[str, list[str]]]:
    """(identifier, [language codes it answers to, preferred first]) for every voice."""
    with _lock:
        return [(ident, [code for _, code in sorted(langs, key=lambda pl: pl[0])]) for ident, langs in _voices()]


def list_voices() -> list[tuple[str, str]]:
    """Installed voices as (identifier usable as ``voice``, main language code)."""
    with _lock:
        return [(ident, langs[0][1] if langs else "") for ident, langs in _voices()]


def synthesize(text: str, *, voice: str = "en-us", rate_wpm: int = 175) -> Synthesis:
    """Speak ``text`` with espeak-ng.

    voice: a language code ("en-us", "cmn", "fr"), or an identifier from list_voices().
    rate_wpm: speaking rate in words per minute, 80..450.
    Returns a Synthesis; raises InputError for unspeakable text, an unknown voice or a
    bad rate.
    """
    if not any(ch.isalnum() for ch in text):
        raise InputError("text has nothing to speak")
    if not RATE_MIN_WPM <= rate_wpm <= RATE_MAX_WPM:
        raise InputError(f"rate must be {RATE_MIN_WPM}..{RATE_MAX_WPM} words per minute, got {rate_wpm}")
    data = text.encode("utf-8")
    with _lock:
        ident = _resolve(voice)
        check_script(text, ident)
        with _Espeak() as es:
            if es.lib.espeak_SetVoiceByName(ident.encode()) != _EE_OK:
                raise PhototalkError(f"espeak could not load voice '{ident}'")
            es.lib.espeak_SetParameter(_RATE, int(rate_wpm), 0)
            err = es.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            check_stop()
            job.checkpoint()
            chunks, events, sr = es.chunks, es.events, es.sr
    if err != _EE_OK:
        raise PhototalkError(f"espeak synthesis failed (error {err})")
    samples = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)).astype(np.float32) / 32768.0
    if not samples.size or not np.any(samples):
        raise InputError(f"espeak produced no audio for the text with voice '{voice}'")
    duration = len(samples) / sr

    # "(en)", "(cmn)": espeak switching language for a foreign word, not a sound; its
    # interval goes to the phone before it
    starts = [(name, ms / 1000.0) for typ, ms, _, _, name in events
              if typ == _EV_PHONEME and name and not name.startswith("(")]
    if not starts or starts[0][1] > 0:
        starts.insert(0, ("_", 0.0))
    phones = []
    for k, (name, t0) in enumerate(starts):
        t1 = min(starts[k + 1][1] if k + 1 < len(starts) else duration, duration)
        if t1 > t0:  # espeak emits zero-length pauses at clause boundaries; they carry no timing
            phones.append((name, t0, t1))
    if len(phones) > 1 and phones[-1][2] - phones[-1][1] < 0.001:
        # events are truncated to whole ms, which leaves a sub-ms sliver at the very end
        phones[-2:] = [(phones[-2][0], phones[-2][1], duration)]
    # text_position counts characters (not UTF-8 bytes) from 1
    words = [(text[pos - 1:pos - 1 + n], ms / 1000.0) for typ, ms, pos, n, _ in events if typ == _EV_WORD]
    return Synthesis(samples=samples, sr=sr, phones=phones, words=words)


GLIDE_SHARE = 0.3  # share of a rising diphthong's time spent on its leading glide
_GLIDES = {"i": "Y", "u": "W", "y": "W"}  # y: the rounded front glide of Mandarin yu-/Cantonese


def arpabet_phones(phones) -> list[tuple[str, float, float]]:
    """espeak phones [(mnemonic, start_s, end_s)] -> ARPAbet [(label, start_s, end_s)] for
    the viseme model. A rising diphthong that espeak keeps as one phoneme (Mandarin
    "iA" in jia, "uo" in guo, "yE" in yue) becomes a short glide plus its nucleus, so the
    mouth opens for the nucleus instead of holding the glide's narrow shape."""
    out = []
    for name, t0, t1 in phones:
        core = name.lstrip("',%=")
        if len(core) >= 2 and core[0] in _GLIDES and core[1] in "aAeEoO":
            tm = t0 + GLIDE_SHARE * (t1 - t0)
            out += [(_GLIDES[core[0]], t0, tm), (espeak_to_arpabet(core[1:]), tm, t1)]
        else:
            out.append((espeak_to_arpabet(name), t0, t1))
    return out


# espeak-ng phoneme mnemonics (stress marks stripped) -> ARPAbet, for speech we
# synthesise ourselves: its timings are exact, so lip sync needs no recognition.
_ESPEAK_CONSONANTS = {
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "m": "M", "n": "N", "N": "NG",
    "f": "F", "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH",
    "l": "L", "r": "R", "j": "Y", "w": "W", "tS": "CH", "dZ": "JH", "x": "HH", "C": "HH", "ts": "S",
    "dz": "Z", "c": "K", "J": "Y", "L": "L", "R": "R", "Q": "HH", "?": "SIL", "B": "B", "F": "F",
    # other languages' tables (Mandarin, Japanese, ...): uvular/velar fricative and stop, flaps,
    # retroflex and alveolo-palatal sibilants and affricates
    "X": "HH", "q": "K", "*": "D", "**": "R", "s.": "SH", "z.": "ZH", "ts.": "CH", "ts.h": "CH",
    "t_s": "S", "d_z": "Z", "s\\": "SH", "z\\": "ZH", "t_s\\": "CH", "d_z\\": "JH",
    "_j": "Y",
}
_ESPEAK_VOWELS = [  # longest prefix first
    ("@r", "ER"), ("aI", "AY"), ("aU", "AW"), ("eI", "EY"), ("oU", "OW"), ("OI", "OY"), ("@L", "L"), ("3", "ER"),
    ("e@", "EH"), ("i@", "IY"), ("U@", "UH"), ("A", "AA"), ("a", "AA"), ("V", "AH"), ("@", "AH"),
    ("E", "EH"), ("e", "EH"), ("I", "IH"), ("i", "IY"), ("0", "AO"), ("O", "AO"), ("o", "OW"),
    ("U", "UH"), ("u", "UW"), ("y", "UW"), ("Y", "UW"), ("W", "UH"),
]


def espeak_to_arpabet(mnemonic: str) -> str:
    """ARPAbet label for an espeak-ng phoneme mnemonic ("'oU" -> "OW", "tS" -> "CH");
    pauses ("_", "_:") -> "SIL"; anything unrecognised -> "AH" (a neutral vowel)."""
    m = mnemonic.lstrip("',%=")
    if not m or (m.startswith("_") and m != "_j"):  # "_j": Japanese palatal glide, not a pause
        return "SIL"
    core = m.rstrip(":#;-/!^2345")
    if core in _ESPEAK_CONSONANTS:
        return _ESPEAK_CONSONANTS[core]
    for prefix, arpa in _ESPEAK_VOWELS:
        if m.startswith(prefix):
            return arpa
    if m[:2] in _ESPEAK_CONSONANTS:
        return _ESPEAK_CONSONANTS[m[:2]]
    if m[:1] in _ESPEAK_CONSONANTS:
        return _ESPEAK_CONSONANTS[m[:1]]
    return "AH"
