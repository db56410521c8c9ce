"""A report in plain words: the verdict as one sentence, and three evidence lines side by side.

    verdict_sentence(report_dict)  -> "Inconclusive: the detector cannot tell. On real public videos ..."
    evidence_lines(report_dict)    -> [("Detector", ...), ("Content Credentials", ...), ("File metadata", ...)]

Every rate in these sentences is read from the report's `calibration` block, which comes from the weights'
sidecar (detector/calibration.py report_block): the false-alarm rate on real footage from sources the
threshold was fitted without (`real_world.false_alarms_leave_one_source_out`), else the validation clips'
rates. Nothing here is hard-coded; weights without a measured calibration say that it was not measured.
The numbers themselves, their sources and per-face margins belong in a report's details section.

Works on `Report.to_dict()` (or a parsed JSON report), so the CLI, the HTML page and the app say the same.
No line ever calls a file "authentic", and a missing manifest reads as unknown provenance, never as fake.
"""

from __future__ import annotations

from detector.provenance.credentials import SOURCE_TYPES

DETECTOR, CREDENTIALS, METADATA = "Detector", "Content Credentials", "File metadata"


def one_in(k: int, n: int) -> str:
    """A count as a non-specialist reads it: "about 1 in 12", "about 3 in 10", "none of 36"."""
    k, n = int(k), int(n)
    if n <= 0:
        return "an unmeasured share"
    if k <= 0:
        return f"none of {n}"
    if k * 2 <= n:
        return f"about 1 in {round(n / k)}"
    return f"about {round(10 * k / n)} in 10"


def false_alarm_clause(cal: dict) -> str | None:
    """"On real public videos from sources it has not seen, it wrongly flags about 1 in 12" (from the
    calibration's real-world held-out-source count, else its validation real clips); None if unmeasured."""
    rw = cal.get("real_world") or {}
    if rw.get("false_alarms_leave_one_source_out") is not None and rw.get("n_real"):
        return (f"On real public videos from sources it has not seen, it wrongly flags "
                f"{one_in(rw['false_alarms_leave_one_source_out'], rw['n_real'])}")
    v = cal.get("validation") or {}
    if v.get("false_alarms") is not None and v.get("n_real"):
        return f"On real test videos, it wrongly flags {one_in(v['false_alarms'], v['n_real'])}"
    return None


def missed_clause(cal: dict) -> str | None:
    """"About 1 in 20 of the fakes it was tested on scored this low" (validation fakes below the band), or None."""
    v = cal.get("validation") or {}
    if v.get("n_fake") is None or v.get("detected") is None:
        return None
    band = cal.get("band") or []
    below = int(v["n_fake"]) - int(v["detected"])
    if len(band) == 2 and band[0] < band[1]:
        if v.get("inconclusive_fake") is None:
            return None
        below -= int(v["inconclusive_fake"])
    return f"{one_in(below, v['n_fake'])} of the fakes it was tested on scored this low".capitalize()


def verdict_sentence(report: dict) -> str:
    """The verdict as one or two sentences a non-specialist can act on (see the module docstring)."""
    verdict = str(report.get("verdict"))
    cal = report.get("calibration") or {}
    if not (report.get("model") or {}).get("trained", True):
        return "No verdict: the loaded model is untrained (random weights), so its answer means nothing."
    if verdict == "NO_FACE":
        return "No verdict: no face was found, so the detector had nothing to judge."
    unmeasured = ("The threshold was set by hand, so how often it is wrong there has not been measured."
                  if cal.get("threshold_overridden") else
                  "How often it is wrong has not been measured for these weights.")
    measured = cal.get("calibrated") and not cal.get("threshold_overridden")
    fa = false_alarm_clause(cal) if measured else None
    if verdict == "FAKE":
        head = "Flagged: the detector finds signs of a manipulated face."
        return f"{head} {fa}, so treat this as a lead to check, not proof." if fa else f"{head} {unmeasured}"
    if verdict == "INCONCLUSIVE":
        head = "Inconclusive: the detector cannot tell."
        return f"{head} {fa}." if fa else f"{head} {unmeasured}"
    if verdict == "REAL":
        head = "Not flagged: the detector found no sign of a manipulated face."
        missed = missed_clause(cal) if measured else None
        return f"{head} It misses fakes too: {missed[:1].lower() + missed[1:]}." if missed else f"{head} {unmeasured}"
    return f"{verdict}."


def credentials_sentence(c2pa: dict | None) -> str:
    """The Content Credentials line: none (unknown origin), unreadable, broken, or who signed it with what."""
    c = c2pa or {}
    state = c.get("state")
    if not c or state == "not read":
        return f"Not checked ({c.get('error') or 'provenance was not read'})."
    if state == "absent" or not c.get("present"):
        return ("None: the file carries no Content Credentials, so where it came from is unknown. Most cameras "
                "and apps do not add them yet; their absence is not a sign of manipulation.")
    if state == "unreadable":
        return (f"Present but unreadable ({c.get('error') or 'the manifest could not be parsed'}): where the file "
                "came from cannot be checked; treat it as unknown.")
    who = _signed_by(c)
    if state == "invalid":
        errs = c.get("validation_errors") or []
        return ("Present but broken: the file no longer matches its signature"
                + (f" ({errs[0]})" if errs else "") + ". It was changed after signing, or the credentials "
                f"belong to another file.{(' ' + who + '.') if who else ''}")
    trust = c.get("trusted")
    if trust is None:
        check = "signature valid, signer not checked against a trust list"
    elif trust:
        check = f"signature valid, and the signer is on your trust list ({c.get('trust_list') or 'given'})"
    else:
        check = f"signature valid, but the signer is NOT on your trust list ({c.get('trust_list') or 'given'})"
    text = f"{who or 'Signed'}: {check}; the file still matches what was signed."
    declared = [SOURCE_TYPES.get(t, t) for t in c.get("source_types") or []]
    if declared:
        text += f" It declares the content {' and '.join(declared)}."
    return text + " A signature says who vouches for the file, not that it shows what happened."


def _signed_by(c: dict) -> str:
    signer = " ".join(x for x in (c.get("signer"), f"({c['issuer']})" if c.get("issuer") else None) if x)
    gen = c.get("claim_generator")
    return ("Signed by " + (signer or "an unnamed signer") + (f" with {gen}" if gen else "")
            + (f" on {c['signed_at']}" if c.get("signed_at") else "")) if (signer or gen) else ""


def metadata_sentence(container: dict | None) -> str:
    """The File metadata line: the container's factual flags, and that tags are editable."""
    m = container or {}
    flags = list(m.get("flags") or [])
    if not m:
        return "Not checked (provenance was not read)."
    if m.get("error"):
        return f"Not readable: {m['error']}."
    if not flags:
        return "Nothing notable in the container."
    text = "; ".join(flags)
    return text[:1].upper() + text[1:] + ". Tags are what the writing software put there; anyone can edit them."


def evidence_lines(report: dict) -> list[tuple[str, str]]:
    """[(title, sentence)] for the detector, the Content Credentials and the file metadata, in that order."""
    prov = report.get("provenance") or {}
    return [(DETECTOR, verdict_sentence(report)), (CREDENTIALS, credentials_sentence(prov.get("c2pa"))),
            (METADATA, metadata_sentence(prov.get("container")))]
