"""The live page (`GET /`) in a real browser: Debian's headless Chromium,
driven by selenium, with synthesized speech fed as the microphone. The page
streams it through an AudioWorklet as 24 kHz PCM16 to /v1/realtime and shows
deltas and completed turns.

Environment: as test_realtime.py; Chromium at /usr/bin/chromium and its driver
at /usr/bin/chromedriver (scripts/install-deps.sh installs both).
Bound: the first completed turns against the sentences spoken, WER <= 0.15.
"""

import tempfile
import time
from pathlib import Path

from live_audio import SENTENCES, silence, synthesize, write_wav
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from test_realtime import USER_KEY, start_live_server
from wer import wer

SPOKEN = SENTENCES[:2]


def browser(microphone: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_the_live_page_shows_deltas_and_completed_turns():
    process, base = start_live_server()
    with tempfile.TemporaryDirectory() as tmp:
        microphone = Path(tmp) / "speech.wav"
        # Chromium loops the file: the silence at the end keeps the loops apart.
        audio = silence(1.0, 48000) + synthesize(SPOKEN, pause=1.5, rate=48000) + silence(6.0, 48000)
        write_wav(microphone, audio, 48000)
        driver = browser(microphone)
        try:
            driver.get(base + "/")
            driver.find_element(By.ID, "key").send_keys(USER_KEY)
            driver.find_element(By.ID, "language").send_keys("en")
            driver.find_element(By.ID, "start").click()
            deadline = time.monotonic() + 90
            finals = []
            while time.monotonic() < deadline:
                finals = driver.find_elements(By.CSS_SELECTOR, '.item[data-state="final"]')
                if len(finals) >= len(SPOKEN):
                    break
                time.sleep(0.25)
            status = driver.find_element(By.ID, "status").text
            assert len(finals) >= len(SPOKEN), f"page status: {status!r}"
            first = finals[: len(SPOKEN)]
            text = " ".join(item.text for item in first)
            assert wer(" ".join(SPOKEN), text) <= 0.15, text
            early = [int(item.get_attribute("data-deltas-before-completed") or 0) for item in first]
            assert max(early) >= 1, f"no delta shown before a turn completed: {early}"
            assert int(driver.execute_script("return document.body.dataset.deltas")) >= 1
        finally:
            driver.quit()
            process.terminate()
            process.wait(timeout=30)
