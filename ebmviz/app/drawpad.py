"""A drawing pad for one digit: a Streamlit (components v2) canvas, drawn with a mouse, pen or finger.

The pad is 280×280 CSS pixels with a round brush about two MNIST pixels wide, white on black like MNIST. When a
stroke ends, its ink goes back to Python as a ``DRAWING_SIDE``² grid of 0..255 (base64 of the bytes, rows first): the
canvas's coverage (its alpha channel; strokes are drawn on a transparent canvas, so the anti-aliased edges keep their
grey); ``ebmviz.images.digit_from_drawing`` then centres it as MNIST did. "Clear" empties the pad and sends null.
Only the primary pointer's left button draws, so a second finger or a right click does not join strokes.
No third-party package: the HTML, CSS and JavaScript are below, and Streamlit serves them.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import streamlit as st

from ebmviz.images import DRAWING_SIDE, ImageError, digit_from_drawing

_HTML = """
<div class="pad">
  <canvas width="280" height="280" aria-label="Drawing pad: draw one digit"></canvas>
  <button type="button" class="clear">Clear</button>
</div>
"""

_CSS = """
.pad { display: flex; align-items: flex-end; gap: 0.75rem; }
canvas { background: #000; border-radius: 0.5rem; touch-action: none; cursor: crosshair;
         width: 280px; height: 280px; border: 1px solid var(--st-border-color, #ccc); }
.clear { font: inherit; padding: 0.3rem 0.9rem; border-radius: 0.5rem; cursor: pointer;
         border: 1px solid var(--st-border-color, #ccc); background: var(--st-background-color, #fff);
         color: var(--st-text-color, #222); }
"""

_JS = """
export default function(component) {
  const { parentElement, setStateValue, data } = component;
  const canvas = parentElement.querySelector('canvas');
  const clear = parentElement.querySelector('.clear');
  const side = data.side;
  const ctx = canvas.getContext('2d');
  ctx.lineCap = 'round'; ctx.lineJoin = 'round'; ctx.strokeStyle = '#fff'; ctx.fillStyle = '#fff';
  ctx.lineWidth = data.brush;
  let last = null;
  const at = (e) => { const r = canvas.getBoundingClientRect();  // the box includes the border: take it off
    const x = e.clientX - r.left - canvas.clientLeft, y = e.clientY - r.top - canvas.clientTop;
    return [x * canvas.width / canvas.clientWidth, y * canvas.height / canvas.clientHeight]; };
  const send = () => {
    const small = document.createElement('canvas'); small.width = side; small.height = side;
    const s = small.getContext('2d'); s.imageSmoothingEnabled = true; s.imageSmoothingQuality = 'high';
    s.drawImage(canvas, 0, 0, side, side);
    const rgba = s.getImageData(0, 0, side, side).data;
    let bin = '';
    for (let i = 3; i < rgba.length; i += 4) bin += String.fromCharCode(rgba[i]);  // alpha: how much ink
    setStateValue('ink', btoa(bin));
  };
  let pointer = null;
  const down = (e) => { if (!e.isPrimary || e.button !== 0 || pointer !== null) return;
    pointer = e.pointerId; canvas.setPointerCapture(e.pointerId); last = at(e);
    ctx.beginPath(); ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI); ctx.fill(); };
  const move = (e) => { if (e.pointerId !== pointer || !last) return; const p = at(e);
    ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke(); last = p; };
  const up = (e) => { if (e.pointerId !== pointer) return; pointer = null; last = null; send(); };
  const wipe = () => { ctx.clearRect(0, 0, canvas.width, canvas.height); setStateValue('ink', null); };
  canvas.addEventListener('pointerdown', down); canvas.addEventListener('pointermove', move);
  canvas.addEventListener('pointerup', up); canvas.addEventListener('pointercancel', up);
  clear.addEventListener('click', wipe);
  return () => { canvas.removeEventListener('pointerdown', down); canvas.removeEventListener('pointermove', move);
    canvas.removeEventListener('pointerup', up); canvas.removeEventListener('pointercancel', up);
    clear.removeEventListener('click', wipe); };
}
"""

_pad = st.components.v2.component("ebmviz_drawpad", html=_HTML, css=_CSS, js=_JS)
BRUSH = 22  # canvas pixels: 280 / 28 = 10 per MNIST pixel, so about two MNIST pixels, as MNIST's pen strokes


def decode_ink(text: object) -> np.ndarray | None:
    """The pad's state -> (DRAWING_SIDE, DRAWING_SIDE) uint8, or None when nothing usable was sent."""
    if not isinstance(text, str) or not text:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != DRAWING_SIDE * DRAWING_SIDE:
        return None
    return np.frombuffer(raw, np.uint8).reshape(DRAWING_SIDE, DRAWING_SIDE)


def drawpad(key: str) -> np.ndarray | None:
    """Show the pad; returns its ink (DRAWING_SIDE, DRAWING_SIDE) uint8 after the first stroke, else None."""
    result = _pad(key=key, data={"side": DRAWING_SIDE, "brush": BRUSH}, height=290,
                  on_ink_change=lambda: None)
    return decode_ink(getattr(result, "ink", None))


def drawn_digit(key: str) -> np.ndarray | None:
    """Show the pad; its drawing prepared as an MNIST digit (1, 1, 28, 28) float32 in [-1, 1], or None (with a
    message when the pad holds too little ink) until something is drawn."""
    ink = drawpad(key)
    if ink is None:
        return None
    try:
        return digit_from_drawing(ink).numpy()
    except ImageError as exc:
        st.info(f"Nothing to use yet: {exc}.")
        return None
