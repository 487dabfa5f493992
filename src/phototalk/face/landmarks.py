"""Named index sets of MediaPipe's 478-point face mesh (468 surface + 10 iris points).

Left/right are the *image's* left/right (MediaPipe's "right eye" 33..133 is on the
image's left for a frontal face). Contours run from one corner to the other.
"""
import numpy as np

N_SURFACE = 468  # points with a surface meaning; 468..477 are iris points
N_LANDMARKS = 478

EYE_OUTER_L, EYE_INNER_L = 33, 133  # image-left eye corners
EYE_OUTER_R, EYE_INNER_R = 263, 362  # image-right eye corners
IRIS_L = np.arange(468, 473)  # centre first
IRIS_R = np.arange(473, 478)

# Lips: four contours per lip, all 11 long and running from the image-left corner
# to the image-right corner, so that column k of every contour is one vertical
# "slice" of the lip (used to move a lip column as a whole).
UPPER_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
UPPER_SEMI_INNER = np.array([62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292])
UPPER_SEMI_OUTER = np.array([76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306])
UPPER_OUTER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291])
LOWER_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
LOWER_SEMI_INNER = np.array([62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292])
LOWER_SEMI_OUTER = np.array([76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306])
LOWER_OUTER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291])
UPPER_LIP = np.stack([UPPER_INNER, UPPER_SEMI_INNER, UPPER_SEMI_OUTER, UPPER_OUTER])  # (4, 11)
LOWER_LIP = np.stack([LOWER_INNER, LOWER_SEMI_INNER, LOWER_SEMI_OUTER, LOWER_OUTER])  # (4, 11)
LIP_CENTER_UPPER, LIP_CENTER_LOWER = 13, 14

# Eyelids, corner to corner. Upper0 is the lid margin; Upper1/2 are the skin folds above.
EYE_L_UPPER0 = np.array([33, 246, 161, 160, 159, 158, 157, 173, 133])
EYE_L_LOWER0 = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133])
EYE_L_UPPER1 = np.array([247, 30, 29, 27, 28, 56, 190])
EYE_L_UPPER2 = np.array([113, 225, 224, 223, 222, 221, 189])
EYE_R_UPPER0 = np.array([263, 466, 388, 387, 386, 385, 384, 398, 362])
EYE_R_LOWER0 = np.array([263, 249, 390, 373, 374, 380, 381, 382, 362])
EYE_R_UPPER1 = np.array([467, 260, 259, 257, 258, 286, 414])
EYE_R_UPPER2 = np.array([342, 445, 444, 443, 442, 441, 413])

FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
                      400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
                      54, 103, 67, 109])  # closed loop, starting at the forehead top
CHIN = 152
FOREHEAD = 10
NOSE_TIP = 1
