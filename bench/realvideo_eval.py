"""Lip sync against real talking videos: animate each video's first frame with the
video's own soundtrack and compare the lip aperture with the real speaker's
(../shared/eval/measure.py --ref-video), as issues #3 and #15 ask; with --dub, also dub
each video with its own audio (`phototalk dub --audio`, issue #6) and compare the same way.

The default set is every real English speech clip of ../shared/eval/assets/video (per its
SOURCES.md: the ten talk_*.mp4, the HDTF clip and the child's clip, whose language is
unverified but which Whisper hears as English); --videos picks others (e.g. the Chinese
man_glasses_speech.mp4). The output has the source's frame rate, so the two aperture
series compare frame by frame. Nothing is given but the image and the audio: no
transcript, no model (the default path).

    .venv/bin/python bench/realvideo_eval.py [--out /tmp/phototalk-realvideo] [--dub [--personalize]] [--size 512]
                                             [--videos talk_may.mp4 ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets"
MEASURE = ROOT.parent / "shared" / "eval" / "measure.py"
SPEECH_VIDEOS = ["talk_jackie.mp4", "talk_lieu.mp4", "talk_may.mp4", "talk_obama.mp4", "talk_radio10.mp4",
                 "talk_retalk1.mp4", "talk_retalk2.mp4", "talk_retalk4.mp4", "talk_retalk5.mp4", "talk_selena.mp4",
                 "hdtf_woman_speech_a.mp4", "child_speech.mp4"]
sys.path.insert(0, str(ROOT / "src"))


def first_frame(video: Path, dst: Path) -> tuple[Path, float]:
    """Save ``video``'s first frame as ``dst``; returns it and the video's frame rate."""
    import av
    from PIL import Image

    with av.open(str(video)) as c:
        fps = float(c.streams.video[0].average_rate or 25)
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    Image.fromarray(frame).save(dst)
    return dst, fps


def measure(eval_python: str, video: Path, img: Path, ref: Path) -> dict:
    js = video.with_suffix(".json")
    subprocess.run([eval_python, str(MEASURE), str(video), "--ref-image", str(img), "--ref-video", str(ref),
                    "--json", str(js)], check=True, capture_output=True, env=dict(os.environ, GLOG_minloglevel="2"))
    return json.loads(js.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/phototalk-realvideo")
    ap.add_argument("--eval-python", default=os.path.expanduser("~/.eval/bin/python"))
    ap.add_argument("--videos", nargs="*", default=SPEECH_VIDEOS)
    ap.add_argument("--size", type=int, default=512, help="generate's --size")
    ap.add_argument("--dub", action="store_true", help="also dub each video with its own audio")
    ap.add_argument("--personalize", action="store_true",
                    help="with --dub, also dub with `--personalize` (the speaker's own audio-to-lips mapping, "
                         "fitted on the video being dubbed) and report the gain over the plain dub")
    a = ap.parse_args()
    if not ASSETS.is_dir():
        print(f"no evaluation assets at {ASSETS}")
        return 0
    import phototalk
    from phototalk.edit import dub_video

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.videos:
        video = ASSETS / "video" / name
        img, fps = first_frame(video, out / f"{video.stem}.png")
        res_path = out / f"{video.stem}__own_audio.mp4"
        res = phototalk.generate(img, video, res_path, fps=fps, size=a.size)
        m = measure(a.eval_python, res_path, img, video)
        row = {"video": name, "fps": fps, "phones_s": res.timings_s.get("phones"), "audio_s": res.duration_s, **m}
        line = (f"{name:24s} ref_corr {m.get('ref_corr', float('nan')):.3f} lag {m.get('ref_lag')} "
                f"av_corr {m.get('av_corr', float('nan')):.3f} open {m.get('open_frac') or 0:.2f} "
                f"phones {row['phones_s'] / res.duration_s:.3f}x")
        if a.dub:
            dub_path = out / f"{video.stem}__dub_own.mp4"
            dub_video(video, dub_path, audio=video)
            d = measure(a.eval_python, dub_path, img, video)
            row["dub_ref_corr"], row["dub_ref_lag"] = d.get("ref_corr"), d.get("ref_lag")
            line += f" | dub ref_corr {d.get('ref_corr', float('nan')):.3f} lag {d.get('ref_lag')}"
            if a.personalize:
                pers_path = out / f"{video.stem}__dub_personal.mp4"
                dub_video(video, pers_path, audio=video, personalize=True)
                p = measure(a.eval_python, pers_path, img, video)
                row["personal_ref_corr"], row["personal_ref_lag"] = p.get("ref_corr"), p.get("ref_lag")
                line += f" | personalized {p.get('ref_corr', float('nan')):.3f} lag {p.get('ref_lag')}"
        rows.append(row)
        print(line, flush=True)
    mean = float(np.mean([r["ref_corr"] for r in rows]))
    print(f"mean ref_corr {mean:.3f} over {len(rows)} clips (issue #15 wants >= 0.40)")
    if a.dub:
        print(f"mean dub ref_corr {float(np.mean([r['dub_ref_corr'] for r in rows])):.3f} (issue #15 wants >= 0.40)")
    if a.dub and a.personalize:
        print(f"mean personalized dub ref_corr {float(np.mean([r['personal_ref_corr'] for r in rows])):.3f} "
              "(fitted on the same clip it is scored on)")
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
