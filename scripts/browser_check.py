#!/usr/bin/env python3
"""Check `borex report` pages in headless Chromium (driven by Selenium).

Reads a JSON spec (written by tests/report.rs):

    {"pages": [{"name": "refine", "path": "/abs/report.html",
                "panels": [{"css": "figure[data-panel=prior] img", "npy": "/abs/prior.npy"}, ...],
                "same_scale": [[0, 1]],
                "steps_final_npy": "/abs/refined.npy",
                "sort_table": "r-query-table"}]}

and for each page checks, failing with a message naming the page:
- the HTML parses as HTML5 with no parse error (html5lib, strict);
- no SEVERE entry in the browser's console log;
- every <img> has loaded (naturalWidth > 0);
- each panel's screenshot agrees with its map: pixel lightness (cividis is
  monotonic in lightness) is rank-correlated with the map's values;
- "own_scale": by default each panel spans its own colour scale (its top
  5 % of pixels much lighter than its bottom 5 %, whatever the map's range);
- "toggle": the page's scale button changes every panel's image, the panels
  then share one scale (where two maps differ clearly, the brighter pixel is
  the one with the higher value: "same_scale"), and a second press restores
  every panel; without "toggle", "same_scale" is checked as the page loads;
- a panel's "outline" (an SVG path; "outlines" lists ones without a panel):
  its fill, sampled by the browser at every pixel centre, is the map's top
  5 % of pixels (from numpy), and it is drawn;
- the step-through (keyboard and buttons) changes the shown map, and its
  last step shows the refined map;
- a sortable table sorts by a column's values when its header button is pressed.
Exits 1 on the first failure, 0 when every page passes.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import html5lib
import numpy as np
from html5lib.html5parser import ParseError
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement


class CheckFailed(Exception):
    pass


def fail(page: str, msg: str) -> None:
    raise CheckFailed(f"{page}: {msg}")


def driver() -> WebDriver:
    opts = webdriver.ChromeOptions()
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
    ):
        opts.add_argument(a)
    opts.add_argument("--force-device-scale-factor=1")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        opts.binary_location = binary
    drv = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=drv), options=opts)


def lightness(png: bytes) -> np.ndarray:
    """Luma of a screenshot, H×W floats."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def centre(el: WebElement) -> None:
    """Scroll the element to the middle of the window, clear of the page's sticky scale bar."""
    el.parent.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)


def element_lightness(el: WebElement, shape: tuple[int, int]) -> np.ndarray:
    """The element's rendered pixels at the map's shape (its 1 px border cut off)."""
    centre(el)
    lum = lightness(el.screenshot_as_png)
    h, w = lum.shape
    if (h, w) == (shape[0] + 2, shape[1] + 2):
        lum = lum[1:-1, 1:-1]
    if lum.shape != shape:
        img = Image.fromarray(lum.astype(np.float32), mode="F").resize(
            (shape[1], shape[0]), Image.Resampling.BILINEAR
        )
        lum = np.asarray(img, dtype=np.float64)
    return lum


def ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(a.ravel()), ranks(b.ravel())
    ra -= ra.mean()
    rb -= rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def check_parse(page: str, path: Path) -> None:
    parser = html5lib.HTMLParser(strict=True)
    try:
        parser.parse(path.read_bytes())
    except ParseError as e:
        fail(page, f"not well-formed HTML5: {e}")


def check_console(page: str, d: WebDriver) -> None:
    severe = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    if severe:
        fail(page, f"console errors: {severe}")


def check_images(page: str, d: WebDriver) -> int:
    bad = d.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);"
    )
    if bad:
        fail(page, f"{len(bad)} images did not load: {bad[:5]}")
    n: int = d.execute_script("return document.images.length;")
    if n == 0:
        fail(page, "no images")
    return n


def top_mask(m: np.ndarray, frac: float = 0.05) -> np.ndarray:
    """The ceil(5 %) highest pixels (numpy's order), as a boolean H×W mask."""
    flat = m.ravel()
    k = int(np.ceil(frac * flat.size))
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask.reshape(m.shape)


def check_own_scale(page: str, d: WebDriver, spec: dict[str, Any]) -> None:
    for p in spec.get("panels", []):
        m = np.load(p["npy"]).astype(np.float64)
        lum = element_lightness(d.find_element(By.CSS_SELECTOR, p["css"]), m.shape)
        top, bottom = top_mask(m), top_mask(-m)
        spread = float(lum[top].mean() - lum[bottom].mean())
        # cividis runs from luma ~29 (dark blue) to ~220 (yellow): on its own
        # scale a map's top and bottom 5 % lie near the two ends.
        if spread < 120:
            fail(
                page,
                f"panel {p['css']} is not on its own scale: top 5 % vs bottom 5 % lightness {spread:.1f} < 120",
            )


def srcs(d: WebDriver, spec: dict[str, Any]) -> list[str]:
    return [
        d.find_element(By.CSS_SELECTOR, p["css"]).get_attribute("src") or ""
        for p in spec.get("panels", [])
    ]


def legends(d: WebDriver, spec: dict[str, Any]) -> tuple[int, bool]:
    """How many of the panels show their own-scale legend, and whether a shared-scale legend is shown."""
    own, shared = d.execute_script(
        "function shown(e){return !!e && e.getClientRects().length>0;}"
        "return [arguments[0].filter(function(c){"
        "return shown(document.querySelector(c).closest('figure').querySelector('.legend-own'));}).length,"
        "Array.from(document.querySelectorAll('.legend-shared')).some(shown)];",
        [p["css"] for p in spec.get("panels", [])],
    )
    return int(own), bool(shared)


def check_toggle(page: str, d: WebDriver, spec: dict[str, Any]) -> None:
    button = d.find_element(By.CSS_SELECTOR, "button.scale-toggle")
    before = srcs(d, spec)
    shots = [
        element_lightness(
            d.find_element(By.CSS_SELECTOR, p["css"]), np.load(p["npy"]).shape
        )
        for p in spec.get("panels", [])
    ]
    d.execute_script("arguments[0].scrollIntoView();", button)
    button.click()
    if button.get_attribute("aria-pressed") != "true":
        fail(page, "the scale button is not pressed after a click")
    after = srcs(d, spec)
    for p, a, b, shot in zip(spec.get("panels", []), before, after, shots):
        if a == b:
            fail(page, f"panel {p['css']}: the toggle did not change its image")
        now = element_lightness(
            d.find_element(By.CSS_SELECTOR, p["css"]), np.load(p["npy"]).shape
        )
        if float(np.abs(now - shot).mean()) < 1.0:
            fail(page, f"panel {p['css']}: the toggle did not change what is shown")
    if legends(d, spec) != (0, True):
        fail(page, f"on the shared scale the legends shown are (own, shared) = {legends(d, spec)}")
    # On the shared scale: each panel still ranks like its map, and the panels agree with each other.
    check_panels(page, d, spec, same_scale=True)
    if spec.get("steps_final_npy"):
        # The step-through follows the toggle: its map's image is the shared one now.
        src = step_src(d)
        shared_src = d.execute_script(
            "var b=document.querySelector('[data-steps]');"
            "var s=JSON.parse(document.getElementById(b.getAttribute('data-steps')).textContent).steps;"
            "return s[+b.querySelector('input[type=range]').value].src_shared;"
        )
        if src != shared_src:
            fail(page, "the step-through's map did not switch to the shared scale")
    button.click()
    if srcs(d, spec) != before or button.get_attribute("aria-pressed") != "false":
        fail(page, "a second press did not bring back every panel's own scale")
    if legends(d, spec) != (len(spec.get("panels", [])), False):
        fail(page, f"on the own scales the legends shown are (own, shared) = {legends(d, spec)}")


def show_outlines(d: WebDriver, on: bool) -> None:
    """Show or hide every top-5 % outline (hidden while maps' colours are measured:
    eval draws them over the map; the outlines are checked on their own)."""
    d.execute_script(
        "var on=arguments[0];document.querySelectorAll('path.top5,path.top5-halo')"
        ".forEach(function(q){q.style.visibility=on?'':'hidden';});",
        on,
    )


def check_outlines(page: str, d: WebDriver, spec: dict[str, Any]) -> None:
    for p in spec.get("panels", []) + spec.get("outlines", []):
        if "outline" not in p:
            continue
        m = np.load(p["npy"]).astype(np.float64)
        h, w = m.shape
        path = d.find_element(By.CSS_SELECTOR, p["outline"])
        # Ask the browser which pixel centres lie inside the drawn path.
        bits: str = d.execute_script(
            """
            var path=arguments[0],h=arguments[1],w=arguments[2];
            var vb=path.ownerSVGElement.viewBox.baseVal,sx=vb.width/w,sy=vb.height/h,out=[];
            var pt=path.ownerSVGElement.createSVGPoint();
            for(var y=0;y<h;y++){for(var x=0;x<w;x++){
              pt.x=(x+0.5)*sx;pt.y=(y+0.5)*sy;out.push(path.isPointInFill(pt)?"1":"0");}}
            return out.join("");
            """,
            path,
            h,
            w,
        )
        inside = np.frombuffer(bits.encode(), dtype=np.uint8).reshape(h, w) == ord("1")
        want = top_mask(m)
        covered = float(inside[want].mean())
        iou = float((inside & want).sum() / max((inside | want).sum(), 1))
        need = float(p.get("outline_iou", 0.97))
        if covered < need or iou < need:
            fail(
                page,
                f"outline {p['outline']}: covers {covered:.1%} of the top 5 % of {p['npy']}, IoU {iou:.3f} < {need}",
            )
        # And it is drawn: showing it changes the panel's pixels.
        stack = path.find_element(By.XPATH, "ancestor::*[contains(@class,'stack')]")
        centre(stack)
        without = lightness(stack.screenshot_as_png)
        show_outlines(d, True)
        with_line = lightness(stack.screenshot_as_png)
        show_outlines(d, False)
        changed = int((np.abs(with_line - without) > 20).sum())
        if changed < 50:
            fail(page, f"outline {p['outline']}: not visible ({changed} pixels change when it is hidden)")


def check_panels(
    page: str, d: WebDriver, spec: dict[str, Any], same_scale: bool = False
) -> None:
    maps: list[np.ndarray] = []
    lums: list[np.ndarray] = []
    for p in spec.get("panels", []):
        m = np.load(p["npy"]).astype(np.float64)
        el = d.find_element(By.CSS_SELECTOR, p["css"])
        lum = element_lightness(el, m.shape)
        rho = spearman(lum, m)
        if rho < 0.9:
            fail(
                page,
                f"panel {p['css']}: screenshot lightness vs {p['npy']}: Spearman {rho:.3f} < 0.9",
            )
        maps.append(m)
        lums.append(lum)
    for a, b in spec.get("same_scale", []) if same_scale else []:
        ma, mb, la, lb = maps[a], maps[b], lums[a], lums[b]
        span = max(ma.max(), mb.max()) - min(ma.min(), mb.min())
        clear = np.abs(ma - mb) > 0.15 * span
        if clear.sum() < 50:
            continue
        agree = float(
            np.mean(np.sign(la[clear] - lb[clear]) == np.sign(ma[clear] - mb[clear]))
        )
        if agree < 0.95:
            fail(
                page,
                f"panels {a} and {b} are not on one colour scale: "
                f"brighter where higher in {agree:.1%} of {int(clear.sum())} pixels",
            )


def step_src(d: WebDriver) -> str:
    src: str = d.execute_script("return document.querySelector('img.step-map').src;")
    return src


def check_steps(page: str, d: WebDriver, spec: dict[str, Any]) -> None:
    box = d.find_element(By.CSS_SELECTOR, "[data-steps]")
    rng = box.find_element(By.CSS_SELECTOR, "input[type=range]")
    last = int(rng.get_attribute("max") or "0")
    if last < 1:
        fail(page, "the step-through has a single step")
    start = step_src(d)
    final = spec.get("steps_final_npy")
    img = box.find_element(By.CSS_SELECTOR, "img.step-map")
    if final:
        m = np.load(final).astype(np.float64)
        rho = spearman(element_lightness(img, m.shape), m)
        if rho < 0.9:
            fail(page, f"the last step's map does not show {final}: Spearman {rho:.3f}")
    rng.send_keys(Keys.ARROW_LEFT)
    after_key = step_src(d)
    if after_key == start or rng.get_attribute("value") != str(last - 1):
        fail(page, "the arrow key on the slider did not change the shown map")
    d.execute_script("arguments[0].scrollIntoView();", box)
    box.find_element(By.CSS_SELECTOR, "button.prev").send_keys(Keys.ENTER)
    for _ in range(last):
        box.find_element(By.CSS_SELECTOR, "button.prev").click()
    if rng.get_attribute("value") != "0" or step_src(d) in (start, after_key):
        fail(page, "the previous button did not step back to the first query")
    if final:
        m = np.load(final).astype(np.float64)
        first = element_lightness(img, m.shape)
        # After one query the posterior is far from the refined map.
        if spearman(first, m) > 0.99:
            fail(page, "the first step shows the refined map")
    box.find_element(By.CSS_SELECTOR, "button.next").click()
    if rng.get_attribute("value") != "1":
        fail(page, "the next button did not step forward")


def column(d: WebDriver, table: str, col: int) -> list[str]:
    vals: list[str] = d.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".map(r => r.cells[arguments[1]].getAttribute('data-v') ?? r.cells[arguments[1]].textContent);",
        table,
        col,
    )
    return vals


def row_texts(d: WebDriver, table: str) -> list[str]:
    rows: list[str] = d.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows).map(r => r.innerHTML);",
        table,
    )
    return rows


def check_sort(page: str, d: WebDriver, table: str) -> None:
    t = d.find_element(By.ID, table)
    buttons = t.find_elements(By.CSS_SELECTOR, "th button")
    for i, b in enumerate(buttons):
        before = column(d, table, i)
        try:
            nums = [float(v) for v in before]
        except ValueError:
            continue
        if nums == sorted(nums) or len(set(nums)) < 2:
            continue  # pressing it could not show a change
        rows_before = row_texts(d, table)
        d.execute_script("arguments[0].scrollIntoView();", b)
        b.send_keys(Keys.ENTER)  # a real button: the keyboard works
        after = [float(v) for v in column(d, table, i)]
        if after != sorted(nums):
            fail(
                page,
                f"table {table} column {i}: not ascending after sorting: {after[:8]}",
            )
        if row_texts(d, table) == rows_before:
            fail(page, f"table {table}: the rows did not move")
        b.click()
        desc = [float(v) for v in column(d, table, i)]
        if desc != sorted(nums, reverse=True):
            fail(page, f"table {table} column {i}: not descending after a second press")
        return
    fail(page, f"table {table}: no numeric column whose order could change")


def check_page(d: WebDriver, spec: dict[str, Any]) -> None:
    page, path = spec["name"], Path(spec["path"])
    check_parse(page, path)
    d.get(path.resolve().as_uri())
    d.execute_script("return document.readyState;")
    n = check_images(page, d)
    check_console(page, d)
    show_outlines(d, False)
    check_panels(page, d, spec, same_scale=not spec.get("toggle"))
    if spec.get("own_scale"):
        check_own_scale(page, d, spec)
    check_outlines(page, d, spec)
    if spec.get("toggle"):
        check_toggle(page, d, spec)
    if spec.get("steps"):
        check_steps(page, d, spec)
    if spec.get("sort_table"):
        check_sort(page, d, spec["sort_table"])
    show_outlines(d, True)
    check_console(page, d)
    if spec.get("screenshot"):
        height = d.execute_script("return document.documentElement.scrollHeight;")
        d.set_window_size(1280, min(int(height) + 40, 6000))
        d.save_screenshot(spec["screenshot"])
        d.set_window_size(1280, 1600)
    print(f"ok {page}: {n} images")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    ap.add_argument("spec", type=Path)
    args = ap.parse_args()
    spec = json.loads(args.spec.read_text())
    d = driver()
    try:
        for p in spec["pages"]:
            check_page(d, p)
    except CheckFailed as e:
        print(f"FAIL {e}", file=sys.stderr)
        return 1
    finally:
        d.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
