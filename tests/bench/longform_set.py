"""Assembles the long-form test set: recordings with reference times.

Each recording is put together from sentences (real speech, or one sentence at a
time from espeak-ng or flite), pauses, silences of 5-40 s and noise-only
stretches, so the start and end of every sentence in it are known exactly. For
each recording NAME it writes NAME.wav (16 kHz mono s16), NAME.txt (the reference
transcript) and NAME.json:

    {"name", "seconds", "sample_rate",
     "sentences": [{"start", "end", "text", "source"}],   # seconds, in order
     "gaps": [{"start", "end", "kind"}]}                  # the inserted silences/noise

Real speech: five LibriVox sentences (Sense and Sensibility, public domain) and
"go forward ten meters" from the test data of the pocketsphinx 5.1.1 source
package (PyPI), and jfk.wav of the shared fixtures. Everything else is
synthesized here; the passages are public domain (Dickens, Lincoln, the King James
Bible, the Declaration of Independence, US presidents' inaugural addresses,
Austen, Melville) or written for this set.

usage: python3 longform_set.py --sphinx-data DIR --fixtures DIR --out DIR [--short]
"""

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import wave
from array import array

RATE = 16000

# --- passages ---------------------------------------------------------------
# A passage is a list of sentences, spoken in one voice with short pauses.

TWO_CITIES = [
    "It was the best of times, it was the worst of times.",
    "It was the age of wisdom, it was the age of foolishness.",
    "It was the epoch of belief, it was the epoch of incredulity.",
    "It was the season of Light, it was the season of Darkness.",
    "It was the spring of hope, it was the winter of despair.",
    "We had everything before us, we had nothing before us.",
    "We were all going direct to Heaven, we were all going direct the other way.",
]
GETTYSBURG = [
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, "
    "conceived in Liberty, and dedicated to the proposition that all men are created equal.",
    "Now we are engaged in a great civil war, testing whether that nation, or any nation so "
    "conceived and so dedicated, can long endure.",
    "We are met on a great battle-field of that war.",
    "We have come to dedicate a portion of that field, as a final resting place for those who "
    "here gave their lives that that nation might live.",
    "It is altogether fitting and proper that we should do this.",
    "But, in a larger sense, we can not dedicate, we can not consecrate, we can not hallow, "
    "this ground.",
    "The world will little note, nor long remember what we say here, but it can never forget "
    "what they did here.",
    "It is for us the living, rather, to be dedicated here to the unfinished work which they "
    "who fought here have thus far so nobly advanced.",
    "That government of the people, by the people, for the people, shall not perish from the "
    "earth.",
]
ECCLESIASTES = [
    "To every thing there is a season, and a time to every purpose under the heaven.",
    "A time to be born, and a time to die; a time to plant, and a time to pluck up that which "
    "is planted.",
    "A time to kill, and a time to heal; a time to break down, and a time to build up.",
    "A time to weep, and a time to laugh; a time to mourn, and a time to dance.",
    "A time to cast away stones, and a time to gather stones together; a time to embrace, and "
    "a time to refrain from embracing.",
    "A time to get, and a time to lose; a time to keep, and a time to cast away.",
    "A time to rend, and a time to sew; a time to keep silence, and a time to speak.",
    "A time to love, and a time to hate; a time of war, and a time of peace.",
]
GENESIS = [
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void; and darkness was upon the face of the deep.",
    "And God said, Let there be light: and there was light.",
    "And God saw the light, that it was good: and God divided the light from the darkness.",
    "And God called the light Day, and the darkness he called Night.",
    "And the evening and the morning were the first day.",
    "And God said, Let there be a firmament in the midst of the waters, and let it divide the "
    "waters from the waters.",
    "And God called the firmament Heaven.",
    "And the evening and the morning were the second day.",
    "And God said, Let the waters under the heaven be gathered together unto one place, and "
    "let the dry land appear: and it was so.",
    "And God called the dry land Earth; and the gathering together of the waters called he "
    "Seas: and God saw that it was good.",
    "And the evening and the morning were the third day.",
]
CORINTHIANS = [
    "Though I speak with the tongues of men and of angels, and have not charity, I am become "
    "as sounding brass, or a tinkling cymbal.",
    "Charity suffereth long, and is kind; charity envieth not; charity vaunteth not itself, is "
    "not puffed up.",
    "Beareth all things, believeth all things, hopeth all things, endureth all things.",
    "When I was a child, I spake as a child, I understood as a child, I thought as a child.",
    "But when I became a man, I put away childish things.",
    "For now we see through a glass, darkly; but then face to face.",
    "And now abideth faith, hope, charity, these three; but the greatest of these is charity.",
]
PSALM = [
    "The Lord is my shepherd; I shall not want.",
    "He maketh me to lie down in green pastures: he leadeth me beside the still waters.",
    "He restoreth my soul: he leadeth me in the paths of righteousness for his name's sake.",
    "Yea, though I walk through the valley of the shadow of death, I will fear no evil: for "
    "thou art with me; thy rod and thy staff they comfort me.",
    "Surely goodness and mercy shall follow me all the days of my life: and I will dwell in "
    "the house of the Lord for ever.",
]
DECLARATION = [
    "We hold these truths to be self-evident, that all men are created equal, that they are "
    "endowed by their Creator with certain unalienable Rights, that among these are Life, "
    "Liberty and the pursuit of Happiness.",
    "He has refused his Assent to Laws, the most wholesome and necessary for the public good.",
    "He has forbidden his Governors to pass Laws of immediate and pressing importance.",
    "He has dissolved Representative Houses repeatedly, for opposing with manly firmness his "
    "invasions on the rights of the people.",
    "He has obstructed the Administration of Justice, by refusing his Assent to Laws for "
    "establishing Judiciary powers.",
    "He has kept among us, in times of peace, Standing Armies without the Consent of our "
    "legislatures.",
    "He has plundered our seas, ravaged our Coasts, burnt our towns, and destroyed the lives "
    "of our people.",
]
INAUGURALS = [
    "Let every nation know, whether it wishes us well or ill, that we shall pay any price, "
    "bear any burden, meet any hardship, support any friend, oppose any foe, to assure the "
    "survival and the success of liberty.",
    "Let both sides explore what problems unite us instead of belaboring those problems which "
    "divide us.",
    "So, first of all, let me assert my firm belief that the only thing we have to fear is "
    "fear itself.",
    "With malice toward none, with charity for all, with firmness in the right as God gives "
    "us to see the right, let us strive on to finish the work we are in.",
]
AUSTEN = [
    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife.",
    "However little known the feelings or views of such a man may be on his first entering a "
    "neighbourhood, this truth is so well fixed in the minds of the surrounding families, "
    "that he is considered the rightful property of some one or other of their daughters.",
    "My dear Mr. Bennet, said his lady to him one day, have you heard that Netherfield Park "
    "is let at last?",
    "Mr. Bennet replied that he had not.",
]
MELVILLE = [
    "Call me Ishmael.",
    "Some years ago, never mind how long precisely, having little or no money in my purse, "
    "and nothing particular to interest me on shore, I thought I would sail about a little "
    "and see the watery part of the world.",
    "It is a way I have of driving off the spleen and regulating the circulation.",
]
MEETING = [
    "Good morning everyone, thank you for joining the weekly planning call.",
    "The first item on the agenda is the budget for the new warehouse in the north.",
    "Our team finished the inventory count on Tuesday and found twelve missing boxes.",
    "The delivery trucks will arrive at the loading dock between eight and ten.",
    "Please send your travel requests to the office before the end of the month.",
    "We expect the new software release to reach customers in the second week of March.",
    "The marketing group would like more time to review the product photographs.",
    "Sales in the western region grew by seven percent compared with last year.",
]
NOTES = [
    "The quick brown fox jumps over the lazy dog near the old river.",
    "Please call the office before noon if you need to change your appointment.",
    "Our train leaves the central station early in the morning every weekday.",
    "The museum opens a new exhibition about ancient maps and early explorers.",
    "Fresh bread and warm soup were served to everyone who came to the meeting.",
    "She wrote a short letter to her grandmother and posted it on Monday.",
    "The weather report says it will rain tomorrow afternoon in the north.",
    "Engineers tested the new bridge with heavy trucks for several days.",
    "A small garden behind the library grows tomatoes, beans and sunflowers.",
    "He forgot his umbrella at the cafe and had to walk home in the rain.",
]
CLOSING = [
    "That brings us to the end of the recording.",
    "The last three sentences must not be lost after the repetitive passage.",
    "Thank you for listening, and have a pleasant evening.",
]
HEAR_ME = ["Can you hear me now?"] * 3

# --- voices -----------------------------------------------------------------
# ("espeak", voice, words per minute) or ("flite", voice, None)

ESPEAK_US = ("espeak", "en-us", 150)
ESPEAK_GB = ("espeak", "en-gb", 140)
ESPEAK_RP = ("espeak", "en-gb-x-rp", 165)
ESPEAK_F = ("espeak", "en-us+f3", 135)
ESPEAK_SCOT = ("espeak", "en-gb-scotland", 145)
ESPEAK_FAST = ("espeak", "en-us+m3", 180)
FLITE_SLT = ("flite", "slt", None)
FLITE_RMS = ("flite", "rms", None)
FLITE_AWB = ("flite", "awb", None)
FLITE_KAL = ("flite", "kal16", None)


class Builder:
    """Synthesizes and loads parts (cached per text and voice) and lays them out."""

    def __init__(self, work, sphinx_data, fixtures):
        self.work = work
        self.sphinx = sphinx_data
        self.fixtures = fixtures
        self.cache = {}

    def _convert(self, source, raw_spec=None):
        """16 kHz mono s16 samples of an audio file, via sox."""
        out = os.path.join(self.work, f"part{len(self.cache)}.wav")
        command = ["sox", "-V1", "-G"] + (raw_spec or []) + [source, "-r", "16000", "-c", "1", "-b", "16", out]
        subprocess.run(command, check=True)
        with wave.open(out, "rb") as reader:
            samples = array("h", reader.readframes(reader.getnframes()))
        os.remove(out)
        return trim(samples)

    def speech(self, text, voice):
        key = (text, voice)
        if key not in self.cache:
            kind, name, wpm = voice
            tmp = os.path.join(self.work, "tts.wav")
            if kind == "espeak":
                subprocess.run(["espeak-ng", "-v", name, "-s", str(wpm), "-w", tmp, text], check=True)
            else:
                subprocess.run(["flite", "-voice", name, "-t", text, "-o", tmp], check=True)
            self.cache[key] = self._convert(tmp)
        return self.cache[key]

    def real(self, name):
        """A real recording: (samples, transcript, source)."""
        if name == "jfk":
            with open(os.path.join(self.fixtures, "jfk.txt"), encoding="utf-8") as f:
                text = f.read().strip()
            return self._cached(name, os.path.join(self.fixtures, "jfk.wav")), text, "jfk.wav (fixture)"
        if name == "goforward":
            path = os.path.join(self.sphinx, "goforward.raw")
            raw = ["-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1"]
            return self._cached(name, path, raw), "Go forward ten meters.", SPHINX
        path = os.path.join(self.sphinx, "librivox", f"sense_and_sensibility_01_austen_64kb-{name}.wav")
        return self._cached(name, path), LIBRIVOX[name], SPHINX + ", LibriVox"

    def _cached(self, key, path, raw_spec=None):
        if key not in self.cache:
            self.cache[key] = self._convert(path, raw_spec)
        return self.cache[key]


SPHINX = "pocketsphinx 5.1.1 test data"
# The package's transcripts (fileids 0870-0930), cased and punctuated; the
# reader says "a more a amiable", as the package's transcript has it.
LIBRIVOX = {
    "0870": "And Mister John Dashwood had then leisure to consider how much there might be "
    "prudently in his power to do for them.",
    "0880": "He was not an ill disposed young man,",
    "0890": "unless to be rather cold hearted and rather selfish is to be ill disposed.",
    "0920": "Had he married a more a amiable woman, he might have been made still more "
    "respectable than he was;",
    "0930": "he might even have been made amiable himself.",
}
LIBRIVOX_ALL = ["0870", "0880", "0890", "0920", "0930"]


def trim(samples, pad=320):
    """Drops leading and trailing quiet (below 4 % of the peak), keeping 20 ms."""
    peak = max((abs(s) for s in samples), default=0)
    limit = max(peak * 0.04, 64)
    first = next((i for i, s in enumerate(samples) if abs(s) > limit), 0)
    last = next((i for i in range(len(samples) - 1, -1, -1) if abs(samples[i]) > limit), len(samples) - 1)
    return samples[max(first - pad, 0) : min(last + pad + 1, len(samples))]


class Recording:
    """A timeline being assembled."""

    def __init__(self, name, builder, seed):
        self.name = name
        self.builder = builder
        self.rng = random.Random(seed)
        self.samples = array("h")
        self.sentences = []
        self.gaps = []

    def now(self):
        return len(self.samples) / RATE

    def pause(self, low=0.3, high=0.7):
        self.samples.extend(array("h", bytes(2 * int(RATE * self.rng.uniform(low, high)))))

    def _place(self, part, text, source):
        start = self.now()
        self.samples.extend(part)
        self.sentences.append({"start": round(start, 3), "end": round(self.now(), 3), "text": text, "source": source})

    def passage(self, sentences, voice):
        kind, name, wpm = voice
        source = f"espeak-ng {name} {wpm} wpm" if kind == "espeak" else f"flite {name}"
        for text in sentences:
            self._place(self.builder.speech(text, voice), text, source)
            self.pause()
        self.pause(0.5, 1.2)

    def real(self, names):
        for name in names:
            samples, text, source = self.builder.real(name)
            self._place(samples, text, source)
            self.pause()
        self.pause(0.5, 1.2)

    def silence(self, seconds, floor_dbfs=None):
        """Digital silence, or a faint white noise floor."""
        self._gap(seconds, "silence", lambda n: noise(self.rng, n, "white", floor_dbfs) if floor_dbfs else bytes(2 * n))

    def noise(self, seconds, colour, dbfs):
        """A noise-only stretch: white, brown (rumble) or hum (50 Hz and a noise floor)."""
        self._gap(seconds, f"noise ({colour}, {dbfs} dBFS)", lambda n: noise(self.rng, n, colour, dbfs))

    def _gap(self, seconds, kind, make):
        start = self.now()
        self.samples.extend(array("h", make(int(RATE * seconds))))
        self.gaps.append({"start": round(start, 3), "end": round(self.now(), 3), "kind": kind})

    def write(self, out):
        base = os.path.join(out, self.name)
        with wave.open(base + ".wav", "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(RATE)
            writer.writeframes(self.samples.tobytes())
        with open(base + ".txt", "w", encoding="utf-8") as f:
            f.write(" ".join(s["text"] for s in self.sentences) + "\n")
        document = {
            "name": self.name,
            "seconds": round(self.now(), 3),
            "sample_rate": RATE,
            "sentences": self.sentences,
            "gaps": self.gaps,
        }
        with open(base + ".json", "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1, ensure_ascii=False)
            f.write("\n")
        words = sum(len(s["text"].split()) for s in self.sentences)
        print(f"  {self.name}: {self.now():.1f} s, {len(self.sentences)} sentences, {words} words, "
              f"{len(self.gaps)} gaps", file=sys.stderr)


def noise(rng, n, colour, dbfs):
    """`n` samples of seeded noise at about `dbfs` RMS, as s16 bytes."""
    amplitude = 32767 * 10 ** (dbfs / 20)
    out = array("h", bytes(2 * n))
    state = 0.0
    for i in range(n):
        x = rng.gauss(0.0, 1.0)
        if colour == "brown":
            state = 0.98 * state + x
            value = state / 5.0
        elif colour == "hum":
            value = 0.3 * x + 1.2 * math.sin(2 * math.pi * 50 * i / RATE) + 0.5 * math.sin(2 * math.pi * 150 * i / RATE)
        else:
            value = x
        out[i] = max(-32768, min(32767, int(value * amplitude)))
    return out.tobytes()


def fill_to(rec, seconds, pool):
    """Adds passages from `pool` in turn until the recording is `seconds` long."""
    i = 0
    while rec.now() < seconds:
        sentences, voice = pool[i % len(pool)]
        rec.passage(sentences, voice)
        i += 1


def lecture(b):
    """Read passages, one voice mostly, a 31 s silence, parallel sentences, then an ending."""
    r = Recording("longform_lecture", b, 1)
    r.real(["jfk"])
    r.passage(NOTES[:5], ESPEAK_US)
    r.passage(GETTYSBURG, ESPEAK_US)
    r.silence(31)
    r.real(LIBRIVOX_ALL)
    r.passage(AUSTEN, FLITE_SLT)
    r.noise(8, "brown", -30)
    r.passage(PSALM, ESPEAK_US)
    r.passage(INAUGURALS, ESPEAK_RP)
    r.silence(12, -60)
    r.passage(MELVILLE, FLITE_KAL)
    r.passage(DECLARATION, ESPEAK_US)
    fill_to(r, 470, [(MEETING, ESPEAK_GB), (NOTES[5:], FLITE_AWB), (CORINTHIANS, ESPEAK_US)])
    r.silence(6)
    r.passage(TWO_CITIES, ESPEAK_US)
    r.passage(ECCLESIASTES, ESPEAK_US)
    fill_to(r, 590, [(GENESIS, FLITE_RMS), (MEETING[4:], ESPEAK_SCOT)])
    r.passage(CLOSING, ESPEAK_US)
    return r


def meeting(b):
    """Many short turns in different voices, a repeated question, pauses of 5-15 s, noise."""
    r = Recording("longform_meeting", b, 2)
    r.noise(5, "hum", -40)
    turns = [
        (MEETING[:3], ESPEAK_GB), (HEAR_ME, ESPEAK_F), (MEETING[3:5], FLITE_SLT),
        (NOTES[:3], ESPEAK_SCOT), (MEETING[5:], FLITE_AWB), (INAUGURALS[:2], ESPEAK_RP),
        (NOTES[3:6], FLITE_KAL), (DECLARATION[:4], ESPEAK_US), (NOTES[6:], ESPEAK_FAST),
        (TWO_CITIES, ESPEAK_F), (DECLARATION[4:], FLITE_RMS),
    ]
    gaps = [(7, None), (5.5, -55), (9, None), (14, -60), (6, None), (11, -55), (8, None), (15, None)]
    r.real(["goforward"])
    for i, (sentences, voice) in enumerate(turns):
        r.passage(sentences, voice)
        if i < len(gaps):
            seconds, floor = gaps[i]
            r.silence(seconds, floor)
    r.real(LIBRIVOX_ALL[:3])
    r.noise(10, "white", -38)
    fill_to(r, 560, [(ECCLESIASTES, ESPEAK_GB), (PSALM, FLITE_SLT), (AUSTEN, ESPEAK_F),
                     (GENESIS[:6], ESPEAK_SCOT), (CORINTHIANS, FLITE_AWB)])
    r.silence(20, -60)
    r.real(["jfk"])
    fill_to(r, 610, [(MEETING, FLITE_KAL)])
    r.passage(CLOSING, ESPEAK_GB)
    return r


def audiobook(b):
    """Long passages at several speeds, the Genesis refrain, a 40 s silence, noise at the end."""
    r = Recording("longform_audiobook", b, 3)
    r.passage(GENESIS, FLITE_SLT)
    r.passage(MELVILLE, ESPEAK_RP)
    r.real(LIBRIVOX_ALL)
    r.silence(40)
    r.passage(CORINTHIANS, FLITE_RMS)
    r.passage(TWO_CITIES, FLITE_AWB)
    r.noise(12, "brown", -32)
    r.passage(ECCLESIASTES, ESPEAK_FAST)
    r.passage(GETTYSBURG, FLITE_KAL)
    r.silence(25, -60)
    r.real(["jfk", "goforward"])
    fill_to(r, 540, [(PSALM, ESPEAK_SCOT), (AUSTEN, FLITE_SLT), (DECLARATION, ESPEAK_F),
                     (INAUGURALS, FLITE_AWB), (NOTES, ESPEAK_RP), (MEETING, ESPEAK_GB)])
    r.passage(GENESIS[4:], ESPEAK_US)
    r.passage(CLOSING, FLITE_RMS)
    r.noise(15, "hum", -35)
    return r


def short(b):
    """2-3 minutes: speech, a parallel passage, a 15 s silence, speech again."""
    r = Recording("longform_short", b, 4)
    r.real(LIBRIVOX_ALL)
    r.passage(NOTES[:3], ESPEAK_US)
    r.passage(TWO_CITIES, ESPEAK_US)
    r.silence(15)
    r.real(["jfk"])
    r.passage(MEETING[:3], FLITE_SLT)
    r.noise(6, "brown", -32)
    r.passage(PSALM[:3], ESPEAK_GB)
    r.passage(CLOSING, ESPEAK_US)
    return r


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sphinx-data", required=True, help="pocketsphinx-5.1.1/test/data")
    parser.add_argument("--fixtures", required=True, help="the shared speech fixtures")
    parser.add_argument("--out", required=True)
    parser.add_argument("--short", action="store_true", help="only the 2-3 minute variant")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        builder = Builder(work, args.sphinx_data, args.fixtures)
        for make in [short] if args.short else [lecture, meeting, audiobook, short]:
            make(builder).write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
