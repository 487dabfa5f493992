"""phototalk: one portrait + speech -> a talking-head MP4, on the CPU.

    import phototalk
    result = phototalk.generate("me.jpg", "speech.mp3", "out.mp4", seed=0)
    result = phototalk.speak("me.jpg", "Hello there.", "out.mp4", voice="en-gb")
"""
from .errors import FaceError, InputError, OutputError, PhototalkError
from .motion.track import MotionTrack
from .options import GenerateOptions
from .pipeline import GenerateResult, generate
from .speak import speak

__version__ = "0.1.0"
__all__ = ["generate", "speak", "GenerateResult", "GenerateOptions", "MotionTrack", "PhototalkError", "InputError",
           "FaceError", "OutputError", "__version__"]
