"""`scripts/fetch-corpus` against local stand-ins for the two legacy repositories (no network).

The stand-ins are bare repositories cloned from the corpus history bundles: their commits hold the legacy
files at the root, as upstream does, so the script can be pointed at them with file:// URLs and a pins
file naming their commits. On top of that history each stand-in gets what upstream has too: a commit that
touches no legacy file (tooling), and, for the text repository, a commit that no branch reaches (a pull
request head), fetched by id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CORPUS, ROOT

SCRIPT = ROOT / "scripts" / "fetch-corpus"
HISTORY = CORPUS / "legacy" / "history"
IMAGE_FILES = ("stable_diffusion.json", "clip.json", "controlnet.json", "blip.json", "esrgan.json", "gfpgan.json",
               "codeformer.json", "safety_checker.json", "miscellaneous.json")
TEXT_FILES = ("models.csv", "db.json", "defaults.json", "generation_params.json")
FILES = {"image": IMAGE_FILES, "text": TEXT_FILES}
HISTORY_FILES = {"image": ("stable_diffusion.json",), "text": TEXT_FILES}
#: the git identity and settings of the stand-ins' own commits: none of the developer's configuration
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "Stand In",
           "GIT_AUTHOR_EMAIL": "stand-in@example.invalid", "GIT_COMMITTER_NAME": "Stand In",
           "GIT_COMMITTER_EMAIL": "stand-in@example.invalid"}


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True,
                       env={**os.environ, **GIT_ENV}, check=False)
    assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr.decode(errors='replace')}"
    return r.stdout.decode()


def show(repo: Path, commit: str, name: str) -> bytes:
    r = subprocess.run(["git", "-C", str(repo), "cat-file", "blob", f"{commit}:{name}"], capture_output=True,
                       env={**os.environ, **GIT_ENV}, check=True)
    return r.stdout


def add_commit(repo: Path, ref: str, parent: str, when: int, message: str, files: dict[str, bytes]) -> str:
    """A commit on `ref` with `files` changed on top of `parent`'s tree; returns its id."""
    stream = [f"commit {ref}\nauthor Stand In <stand-in@example.invalid> {when} -0500\n"
              f"committer Stand In <stand-in@example.invalid> {when} -0500\n"
              f"data {len(message)}\n{message}from {parent}\n".encode()]
    for name, data in files.items():
        stream.append(b"M 100644 inline %s\ndata %d\n%s\n" % (name.encode(), len(data), data))
    git(repo, "fast-import", "--quiet", stdin=b"".join(stream) + b"\n")
    return git(repo, "rev-parse", ref).strip()


def author_date(repo: Path, commit: str) -> str:
    return git(repo, "log", "-1", "--format=%ad", "--date=short", commit).strip()


def run_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


#: how many of the newest bundle versions each stand-in keeps (enough history, a quick run)
KEEP = 60


def stand_in(bundle: Path, repo: Path) -> list[str]:
    """A bare repository whose main branch is a new history: the first version of `bundle`, then its KEEP
    newest, each commit with the same files as that version, an upstream-like author in -0500 and a
    committer time an hour later (so the author time is seen to be the one used). Returns its commits."""
    r = subprocess.run(["git", "clone", "--bare", "--quiet", str(bundle), str(repo)], capture_output=True,
                       text=True, env={**os.environ, **GIT_ENV})
    assert r.returncode == 0, r.stderr
    versions = [line.split() for line in git(repo, "log", "--reverse", "--format=%H %at").splitlines()]
    versions = [versions[0], *versions[-KEEP:]]
    names = FILES[repo.stem]
    lookups = "".join(f"{commit}:{name}\n" for commit, _ in versions for name in names)
    found = iter(git(repo, "cat-file", "--batch-check", stdin=lookups.encode()).splitlines())
    stream = []
    for n, (_, when) in enumerate(versions):
        message = f"version {n}\n"
        stream.append(f"commit refs/heads/main\nauthor Up Stream <up@example.invalid> {when} -0500\n"
                      f"committer Up Stream <up@example.invalid> {int(when) + 3600} -0500\n"
                      f"data {len(message)}\n{message}deleteall\n")
        for name in names:
            blob = next(found).split()
            if blob[-1] != "missing":
                stream.append(f"M 100644 {blob[0]} {name}\n")
        stream.append("\n")
    git(repo, "fast-import", "--quiet", "--force", stdin="".join(stream).encode())
    return git(repo, "rev-list", "--reverse", "main").split()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The two stand-in repositories and the pins naming their commits (also written as a pins file)."""
    root = tmp_path_factory.mktemp("upstream")
    repos = {kind: root / f"{kind}.git" for kind in FILES}
    history = {kind: stand_in(HISTORY / f"{kind}.bundle", repos[kind]) for kind in FILES}
    # the image "current" pin is a later commit that changes only tooling: the bundle must end before it
    image_tip = add_commit(repos["image"], "refs/heads/main", history["image"][-1], 1790000000,
                           "tooling only\n", {"README.md": b"stand-in\n"})
    # a text version that only a pull-request ref reaches: not cloned, fetched by id (as GitHub allows)
    pr_base = history["text"][-5]
    pr_head = add_commit(repos["text"], "refs/pull/1/head", pr_base, 1790000500, "a pull request\n",
                         {"models.csv": show(repos["text"], pr_base, "models.csv") + b"pr,row\r\n"})
    git(repos["text"], "config", "uploadpack.allowReachableSHA1InWant", "true")
    # (the first text version holds db.json alone: the history pins start after it)
    versions = {"image": [history["image"][i] for i in (0, 30, -1)],
                "text": [history["text"][i] for i in (1, 30, -1)] + [pr_head]}
    current = {"image": image_tip, "text": history["text"][-1]}
    pins = {
        "current": {kind: {"commit": current[kind], "date": author_date(repos[kind], current[kind])}
                    for kind in FILES},
        "history": {kind: [{"date": author_date(repos[kind], c), "commit": c} for c in versions[kind]]
                    for kind in FILES},
    }
    pins_file = root / "pins.json"
    pins_file.write_text(json.dumps(pins), encoding="utf-8")
    return {"repos": repos, "history": history, "current": current, "versions": versions, "pins": pins,
            "pins_file": pins_file}


def fetch_args(upstream: dict, dest: Path, pins_file: Path | None = None) -> list[str | Path]:
    return ["--image-repo", upstream["repos"]["image"].as_uri(), "--text-repo", upstream["repos"]["text"].as_uri(),
            "--pins", pins_file or upstream["pins_file"], dest]


@pytest.fixture(scope="module")
def fetched(upstream: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    dest = tmp_path_factory.mktemp("fetched") / "nested" / "corpus"  # parents that do not exist yet
    r = run_script(*fetch_args(upstream, dest))
    assert r.returncode == 0, r.stderr
    return dest, r


def test_help_and_builtin_pins_match_the_corpus() -> None:
    r = run_script("--help")
    assert r.returncode == 0 and "--reference-python" in r.stdout and "--pins" in r.stdout
    pins = json.loads(run_script("--print-pins").stdout)
    # the built-in pins are the versions the suite's corpus was made from
    source = (CORPUS / "legacy" / "current" / "SOURCE").read_text().split()
    assert source == [x for kind in FILES for x in (kind, pins["current"][kind]["commit"],
                                                    pins["current"][kind]["date"])]
    for kind in FILES:
        want = sorted(p.name for p in (HISTORY / kind).iterdir())
        assert sorted(f"{v['date']}_{v['commit'][:8]}" for v in pins["history"][kind]) == want


def test_layout(fetched: tuple[Path, subprocess.CompletedProcess], upstream: dict) -> None:
    dest, r = fetched
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "legacy"]
    assert sorted(p.name for p in (dest / "legacy").iterdir()) == ["current", "history"]
    assert sorted(p.name for p in (dest / "legacy" / "history").iterdir()) == [
        "image", "image.bundle", "text", "text.bundle"]
    assert "reference-v2: skipped" in r.stdout
    # nothing but DEST next to it: the staging folder was renamed, not left behind
    assert [p.name for p in dest.parent.iterdir()] == ["corpus"]


def test_current_is_upstream_at_the_pins(fetched: tuple[Path, subprocess.CompletedProcess], upstream: dict) -> None:
    current = fetched[0] / "legacy" / "current"
    assert sorted(p.name for p in current.iterdir()) == sorted([*IMAGE_FILES, *TEXT_FILES, "SOURCE"])
    for kind, names in FILES.items():
        for name in names:
            assert (current / name).read_bytes() == show(upstream["repos"][kind], upstream["current"][kind], name)
    pins = upstream["pins"]["current"]
    assert (current / "SOURCE").read_text() == "".join(
        f"{kind} {pins[kind]['commit']} {pins[kind]['date']}\n" for kind in FILES)


def test_history_folders(fetched: tuple[Path, subprocess.CompletedProcess], upstream: dict) -> None:
    for kind in FILES:
        folder = fetched[0] / "legacy" / "history" / kind
        want = {f"{author_date(upstream['repos'][kind], c)}_{c[:8]}": c for c in upstream["versions"][kind]}
        assert sorted(p.name for p in folder.iterdir()) == sorted(want)
        for name, commit in want.items():
            assert sorted(p.name for p in (folder / name).iterdir()) == sorted(HISTORY_FILES[kind])
            for f in HISTORY_FILES[kind]:
                assert (folder / name / f).read_bytes() == show(upstream["repos"][kind], commit, f)


@pytest.mark.parametrize("kind", sorted(FILES))
def test_bundle_holds_one_commit_per_upstream_change(fetched: tuple[Path, subprocess.CompletedProcess],
                                                     upstream: dict, kind: str, tmp_path: Path) -> None:
    bundle = fetched[0] / "legacy" / "history" / f"{kind}.bundle"
    heads = git(tmp_path, "bundle", "list-heads", str(bundle)).split()
    assert heads[1::2] == ["HEAD", "refs/heads/main"] and heads[0] == heads[2]
    clone = tmp_path / "clone"
    r = subprocess.run(["git", "clone", "--quiet", str(bundle), str(clone)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [line.split("|") for line in git(clone, "log", "--reverse", "--format=%T|%an <%ae>|%at %ai|%ct|%s")
            .splitlines()]
    # every stand-in commit changed the legacy files, except the tooling commit and the pull request
    want = [line.split() for line in git(upstream["repos"][kind], "log", "--reverse", "--format=%H %T %at",
                                          upstream["history"][kind][-1]).splitlines()]
    assert [row[4] for row in rows] == [f"upstream {commit}" for commit, _, _ in want]
    for (tree, identity, author, committer, _), (_, upstream_tree, author_time) in zip(rows, want, strict=True):
        # the stand-in trees hold the legacy files only, so equal files mean equal tree ids
        assert tree == upstream_tree
        assert identity == "history <history@localhost>"
        assert author.split()[0] == committer == author_time and author.endswith("+0000")
    assert sorted(git(clone, "ls-tree", "--name-only", "HEAD").split()) == sorted(FILES[kind])


def test_a_second_run_gives_identical_bytes(fetched: tuple[Path, subprocess.CompletedProcess], upstream: dict,
                                            tmp_path: Path) -> None:
    again = tmp_path / "corpus"
    again.mkdir()
    (again / "stale").write_text("from before")
    r = run_script("--force", *fetch_args(upstream, again))  # --force: replaces what was there
    assert r.returncode == 0, r.stderr
    assert not (again / "stale").exists() and [p.name for p in tmp_path.iterdir()] == ["corpus"]
    first = {p.relative_to(fetched[0]): p.read_bytes() for p in fetched[0].rglob("*") if p.is_file()}
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def broken_pins(upstream: dict, tmp_path: Path, change) -> Path:
    pins = json.loads(json.dumps(upstream["pins"]))
    change(pins)
    path = tmp_path / "pins.json"
    path.write_text(json.dumps(pins), encoding="utf-8")
    return path


def assert_fails_cleanly(r: subprocess.CompletedProcess, dest: Path, *words: str) -> None:
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("fetch-corpus: error: "), r.stderr
    for word in words:
        assert word in r.stderr
    assert not dest.exists()
    if dest.parent.exists():  # no staging folder left beside it
        assert [p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")] == []


def test_a_missing_file_names_it_and_leaves_nothing(upstream: dict, tmp_path: Path) -> None:
    first = upstream["history"]["text"][0]  # the first text version holds db.json only

    def pin_first(pins: dict) -> None:
        pins["history"]["text"].append({"date": author_date(upstream["repos"]["text"], first), "commit": first})

    dest = tmp_path / "out" / "corpus"
    r = run_script(*fetch_args(upstream, dest, broken_pins(upstream, tmp_path, pin_first)))
    assert_fails_cleanly(r, dest, "models.csv missing", first)
    assert not (tmp_path / "out").exists()  # the parent this run made is gone too


def test_an_unknown_commit_or_a_wrong_date_fails(upstream: dict, tmp_path: Path) -> None:
    dest = tmp_path / "corpus"

    def unknown(pins: dict) -> None:
        pins["current"]["image"]["commit"] = "0" * 40

    r = run_script(*fetch_args(upstream, dest, broken_pins(upstream, tmp_path, unknown)))
    assert_fails_cleanly(r, dest, "0" * 40, "not found")

    def wrong_date(pins: dict) -> None:
        pins["history"]["image"][0]["date"] = "2001-01-01"

    r = run_script(*fetch_args(upstream, dest, broken_pins(upstream, tmp_path, wrong_date)))
    assert_fails_cleanly(r, dest, "2001-01-01", "author date")


def test_an_existing_destination_is_kept(upstream: dict, tmp_path: Path) -> None:
    dest = tmp_path / "corpus"
    dest.mkdir()
    (dest / "mine").write_text("keep")
    r = run_script(*fetch_args(upstream, dest))
    assert r.returncode == 1 and "already exists" in r.stderr and "--force" in r.stderr
    assert (dest / "mine").read_text() == "keep"


def test_reference_v2_is_what_the_existing_library_converts(upstream: dict, client_python: Path,
                                                            tmp_path: Path) -> None:
    """With --reference-python the 8.6.2 conversion of legacy/current, byte for byte the corpus' own:
    the stand-ins' current files are the corpus' legacy/current (the bundles end there)."""
    dest = tmp_path / "corpus"
    r = run_script("--reference-python", client_python, *fetch_args(upstream, dest))
    assert r.returncode == 0, r.stderr
    want = {p.name: p.read_bytes() for p in (CORPUS / "reference-v2").iterdir()}
    got = {p.name: p.read_bytes() for p in (dest / "reference-v2").iterdir()}
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []
