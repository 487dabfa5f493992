"""Record mediapipe 0.10.21's face results as a small test fixture (run once, with the
old stack that still has mediapipe installed; kept for provenance of
tests/data/mediapipe_golden.npz).

    PYTHONPATH=src /path/to/old/.venv/bin/python bench/record_mediapipe_golden.py

For every portrait of ../shared/eval/assets/images at 512 px longer side: the 478
landmarks (pixels, float16), the full-range detector's face boxes and a 64x64 uint8
person mask, all from phototalk.face.analyze as it was with mediapipe. For the first
frames of a few clips of ../shared/eval/assets/video (512 px longer side): the raw
landmarks of mediapipe's face mesh in video (tracking) mode as edit/tracking.py used it,
every VIDEO_STEP-th frame. Only coordinates are stored, no pixels; the source file names
are stored with them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "eval" / "assets"
OUT = ROOT / "tests" / "data" / "mediapipe_golden.npz"
SIZE_PX = 512
MASK_PX = 64
CLIPS = ("hdtf_woman_speech_a.mp4", "man_glasses_speech.mp4", "talk_obama.mp4", "child_speech.mp4")
VIDEO_FRAMES = 24  # frames tracked from the start of each clip
VIDEO_STEP = 4  # every 4th of them is stored


def frames_512(path: Path, n: int):
    import av
    import cv2

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= n:
                return
            a = f.to_ndarray(format="rgb24")
            h, w = a.shape[:2]
            s = SIZE_PX / max(h, w)
            yield cv2.resize(a, (round(w * s) // 2 * 2, round(h * s) // 2 * 2), interpolation=cv2.INTER_AREA)


def main() -> int:
    import cv2
    import mediapipe

    from phototalk.edit import tracking
    from phototalk.face import analyze as A
    from phototalk.face.image import load_image, output_size, resize_to

    data: dict[str, np.ndarray] = {"mediapipe_version": np.array(mediapipe.__version__)}
    names = sorted(p.name for p in (ASSETS / "images").iterdir())
    sizes, lms, boxes, nbox, masks, fboxes = [], [], [], [], [], []
    for name in names:
        img = load_image(ASSETS / "images" / name)
        w, h = output_size(img.shape[1], img.shape[0], SIZE_PX)
        img = resize_to(img, w, h)
        det = A.detect_faces(img)
        rig = A.analyze_face(img, face_index=0 if len(det) > 1 else None)
        sizes.append((w, h))
        lms.append(rig.landmarks)
        fboxes.append(rig.face_box)
        boxes.append(det[0])
        nbox.append(len(det))
        masks.append(cv2.resize(rig.person, (MASK_PX, MASK_PX), interpolation=cv2.INTER_AREA))
        print(name, (w, h), len(det), [round(v) for v in det[0]], file=sys.stderr)
    data.update(image_names=np.array(names), image_sizes=np.array(sizes, np.int32),
                image_landmarks=np.array(lms, np.float32),
                image_face_box=np.array(fboxes, np.float32), image_detections=np.array(nbox, np.int32),
                image_person_64=(np.clip(np.array(masks), 0, 1) * 255).round().astype(np.uint8))
    vnames, vsizes, vlm, vfound = [], [], [], []
    for clip in CLIPS:
        fr = list(frames_512(ASSETS / "video" / clip, VIDEO_FRAMES))
        rows = []
        tracking.track_faces(fr, 25.0, on_frame=lambda i, f, lm: rows.append(lm))
        keep = rows[::VIDEO_STEP]
        vnames.append(clip)
        vsizes.append(fr[0].shape[1::-1])
        vfound.append([lm is not None for lm in keep])
        vlm.append([lm if lm is not None else np.full((478, 3), np.nan, np.float32) for lm in keep])
        print(clip, fr[0].shape, sum(vfound[-1]), file=sys.stderr)
    data.update(video_names=np.array(vnames), video_sizes=np.array(vsizes, np.int32),
                video_frames=np.arange(0, VIDEO_FRAMES, VIDEO_STEP, dtype=np.int32),
                video_landmarks=np.array(vlm, np.float32), video_found=np.array(vfound))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # Coordinates to 1/100 px are far finer than any tolerance the tests use.
    for k in ("image_landmarks", "video_landmarks"):
        data[k] = np.round(data[k], 2)
    np.savez_compressed(OUT, **data)
    print(OUT, OUT.stat().st_size, "bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
