"""pydicom's DICOM JSON for files of the pydicom corpus, for test/dicom/pydicom-compare.test.ts.

Run with the system python (/usr/bin/python3) that has pydicom from `apt-get install python3-pydicom`.
Usage: pydicom_json.py [--no-private-dictionary] FILE... ; prints one JSON object on stdout:
  {"pydicom": "2.3.1", "files": {FILE: RESULT}}
where RESULT is one of
  {"status": "ok", ...READ}                        dcmread(FILE) worked
  {"status": "forced", "error": "...", ...READ}    dcmread raised; dcmread(FILE, force=True) worked
  {"status": "error", "error": "...", "forcedError": "..."}  neither worked
READ is {"json": dcmread(FILE).to_json_dict() (file meta excluded), "dropped": [...]}; "dropped"
lists the top-level tags whose value to_json_dict could not convert (it raises, e.g. on IS "1A"):
they are left out of "json".

--no-private-dictionary: private data elements whose VR the stream does not give (implicit VR, or
UN) stay UN instead of taking the VR of pydicom's private dictionary (we have no private dictionary).
"""
import json
import sys
import warnings

try:
    import pydicom
except ImportError:  # the caller turns this exit code into a clear failure
    sys.stderr.write("pydicom is not importable by %s\n" % sys.executable)
    sys.exit(3)


def read(path, force):
    """dcmread + to_json_dict; top-level elements whose value pydicom cannot convert are dropped and listed."""
    ds = pydicom.dcmread(path, force=force)
    dropped = []
    try:
        data = ds.to_json_dict()
    except Exception:  # noqa: BLE001 - e.g. an IS value "1A": pydicom raises, we report what it could do
        data = ds.to_json_dict(suppress_invalid_tags=True)
        dropped = ["%08X" % t for t in ds.keys() if "%08X" % t not in data]
    return {"json": data, "dropped": dropped}


def no_private_dictionary():
    import pydicom.dataelem

    def private_vr(_ds, tag):
        return "LO" if tag.is_private_creator else "UN"

    pydicom.dataelem._private_vr_for_tag = private_vr


def main(args):
    paths = [a for a in args if not a.startswith("--")]
    if "--no-private-dictionary" in args:
        no_private_dictionary()
    out = {}
    warnings.simplefilter("ignore")
    for path in paths:
        try:
            out[path] = {"status": "ok", **read(path, False)}
            continue
        except Exception as e:  # noqa: BLE001 - any failure of pydicom is a result to report
            error = "%s: %s" % (type(e).__name__, e)
        try:
            out[path] = {"status": "forced", "error": error, **read(path, True)}
        except Exception as e:  # noqa: BLE001
            out[path] = {"status": "error", "error": error, "forcedError": "%s: %s" % (type(e).__name__, e)}
    json.dump({"pydicom": pydicom.__version__, "files": out}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
