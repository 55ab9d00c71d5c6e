"""The scale case: a much bigger tree than the corpus (scipy, OpenCV, matplotlib, pandas)."""
import io
import json

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import linalg, signal

img = np.zeros((64, 64, 3), np.uint8)
cv2.circle(img, (32, 32), 20, (255, 255, 255), -1)
edges = cv2.Canny(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 50, 150)
fig, ax = plt.subplots()
ax.plot(signal.windows.hann(32))
png = io.BytesIO()
fig.savefig(png, format="png")
frame = pd.DataFrame({"x": range(10), "y": [v * v for v in range(10)]})
print(json.dumps({
    "edges": int(edges.sum() > 0),
    "det": round(float(linalg.det(np.eye(3) * 2)), 6),
    "png": png.getvalue()[:4].hex(),
    "ysum": int(frame["y"].sum()),
}, sort_keys=True))
