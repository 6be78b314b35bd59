"""Every example workflow in ComfyUI's real web frontend: it loads with no missing node types, no
rejected widget values, no dropped links and no error dialog or toast, opens with every node in view and
none overlapping another, and the prompt the frontend builds from it runs. Workflows saved by earlier
releases load and run with the values they saved. In the classic canvas on every frontend, and in the Vue
renderer ("Nodes 2.0") where the frontend supports the pack there (``frontend_harness.VUE_FROM``).

Needs ``COMFYUI_DIR`` (README, "Tests inside a real ComfyUI"), the ``playwright`` Python package and
``/usr/bin/chromium``; skipped otherwise. The browser logic is shared with
``tools/render_workflow_previews.py`` (see ``frontend_harness``).
"""

from __future__ import annotations

import pytest

from frontend_harness import RENDERERS, open_frontend, comfyui_with_fake_fal, saved_workflows, unavailable, \
    workflow_files

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"frontend tests skipped: {REASON}")
WORKFLOWS = workflow_files()
SAVED = saved_workflows()


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    with comfyui_with_fake_fal(tmp_path_factory.mktemp("frontend")) as comfy:
        yield comfy


@pytest.fixture(scope="module", params=RENDERERS)
def frontend(request, comfy):
    with open_frontend(comfy, request.param) as page:
        yield page


def test_there_are_example_workflows():
    assert WORKFLOWS, "example_workflows/*.json is empty"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_loads_cleanly_laid_out_and_in_view(frontend, path):
    problems = frontend.load(path, restore_view=True)
    frontend.page.wait_for_timeout(500)  # the Vue renderer measures its nodes after they mount
    problems += frontend.layout_problems()
    assert not problems, f"{path.name} in the frontend ({frontend.renderer}):\n" + "\n".join(problems)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_prompt_built_by_the_frontend_runs(frontend, path):
    frontend.load(path)
    problems = frontend.run()
    assert not problems, f"{path.name} queued from the frontend ({frontend.renderer}):\n" + "\n".join(problems)


@pytest.mark.parametrize("release,path,added", SAVED, ids=[f"{release}/{path.stem}" for release, path, _ in SAVED])
def test_a_workflow_saved_by_a_release_loads_and_runs_with_the_same_values(frontend, release, path, added):
    problems = frontend.load(path, added=added)
    assert not problems, f"{path.name} (saved by {release}) in the frontend:\n" + "\n".join(problems)
    problems = frontend.run()
    assert not problems, f"{path.name} (saved by {release}) queued from the frontend:\n" + "\n".join(problems)


def test_the_template_browser_finds_every_example_and_its_preview(comfy):
    """What the Templates dialog asks ComfyUI for: the pack's examples (/api/workflow_templates), then each
    card's picture at /api/workflow_templates/<pack>/<name>.jpg (the frontend's mediaSubtype for a custom
    node pack's templates is 'jpg' in 1.27, 1.37 and 1.58)."""
    import io
    import urllib.request

    from PIL import Image

    from comfyui_harness import PACK_LINK_NAME
    listed = comfy.get("/api/workflow_templates")
    assert sorted(listed.get(PACK_LINK_NAME, [])) == [p.stem for p in WORKFLOWS]
    for path in WORKFLOWS:
        with urllib.request.urlopen(f"{comfy.url}/api/workflow_templates/{PACK_LINK_NAME}/{path.stem}.jpg",
                                    timeout=10) as answer:
            assert answer.status == 200
            assert Image.open(io.BytesIO(answer.read())).format == "JPEG"
