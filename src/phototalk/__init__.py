"""phototalk: one portrait + speech -> a talking-head MP4, on the CPU.

    import phototalk
    result = phototalk.run({"kind": "generate", "image": "me.jpg", "text": "Hello there.",
                            "output": "out.mp4", "options": {"seed": 1}})
    result = phototalk.generate("me.jpg", "speech.mp3", "out.mp4", seed=0)
    result = phototalk.speak("me.jpg", "Hello there.", "out.mp4", voice="en-gb")
"""
from .api import Request, Result, run
from .core.job import CancelToken, ProgressEvent
from .errors import Cancelled, FaceError, InputError, OutputError, PhototalkError
from .motion.track import MotionTrack
from .options import DubOptions, EditOptions, GenerateOptions, option_specs
from .pipeline import GenerateResult, generate
from .speak import speak

__version__ = "0.1.0"
__all__ = ["run", "Request", "Result", "CancelToken", "Cancelled", "ProgressEvent", "option_specs",
           "generate", "speak", "GenerateResult", "GenerateOptions", "EditOptions", "DubOptions", "MotionTrack",
           "PhototalkError", "InputError", "FaceError", "OutputError", "__version__"]
