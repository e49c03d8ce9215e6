"""The web demo in a real headless Chromium (Debian's, driven by Playwright):
type a mention, see the reaction, the #logs notice and the threaded reply;
see a board report's blocks rendered; press a confirmation's button. A
screenshot is saved in ``test-artifacts/``."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from bennettbot.emulator.harness import service_environment
from processes import kill_processes, stop_processes

FIXTURES = Path(__file__).parent / "fixtures"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
    None,
)
# Chromium on a machine with a closed network, run as root, with no screen
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium here (.ci/run installs Debian's)"
)


async def start_demo(tmp_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = service_environment(
        tmp_path,
        JOB_CONFIG_PATH=str(FIXTURES / "webdemo_jobs.toml"),
        WORKSPACE_DIR=str(FIXTURES / "webdemo_workspace"),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bennettbot",
        "demo",
        "--web",
        "--port",
        "0",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while line := (await process.stdout.readline()).decode():
            if line.startswith("http://127.0.0.1:"):
                return process, line.strip()
    raise AssertionError("the demo printed no URL")


@pytest.mark.timeout(120)
async def test_the_web_demo_in_a_real_browser(tmp_path):
    from playwright.async_api import async_playwright, expect

    process, url = await start_demo(tmp_path)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=FLAGS
            )
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            await page.goto(url)
            message = page.get_by_label("Message", exact=True)
            await message.fill("@bennettbot test hello Bob")
            await message.press("Enter")

            pane = page.locator("#messages")
            asked = pane.locator("article", has_text="test hello Bob").first
            await expect(asked.locator(".reaction")).to_have_text(
                "✅ 1", timeout=15_000
            )
            await expect(asked.locator(".thread")).to_contain_text(
                "Hello Bob!", timeout=15_000
            )
            await expect(asked.locator(".mention").first).to_have_text("@bennettbot")

            await message.fill("@bennettbot demo board")
            await message.press("Enter")
            board = pane.locator(".thread .blocks").last
            await expect(board.locator(".block-header")).to_have_text(
                "Team board", timeout=15_000
            )
            await expect(board.locator("strong").first).to_have_text("Todo")
            await expect(
                board.get_by_role("link", name="Fix the rota")
            ).to_have_attribute("href", "https://github.com/example/bot/issues/1")
            await expect(board.locator(".block-context").first).to_contain_text(
                "3 items"
            )
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "web-demo.png"), full_page=True)

            # a job that asks first: press Run, as a person would
            await message.fill("@bennettbot test greet Ann")
            await message.press("Enter")
            run = pane.get_by_role("button", name="Run")
            await run.click(timeout=15_000)
            await expect(pane).to_contain_text("confirmed by @alice", timeout=15_000)
            await expect(pane).to_contain_text("Greetings Ann!", timeout=15_000)
            await expect(pane.get_by_role("button", name="Run")).to_have_count(0)

            # as the guest, in the DM
            await page.get_by_label("Post as").select_option("guest")
            await page.get_by_role("button", name="bennettbot (DM)").click()
            await message.fill("status")
            await message.press("Enter")
            await expect(pane.locator("article").first).to_contain_text(
                "@guest", timeout=15_000
            )
            await expect(pane).to_contain_text("Nothing is happening", timeout=15_000)

            # keyboard only: the channel list is buttons, reachable with Tab
            await page.get_by_label("Post as").select_option("alice")
            await page.get_by_role("button", name="#logs").focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("#channel-title")).to_have_text("#logs")
            # `test_hello_name` is rendered as code
            await expect(pane).to_contain_text("Command test_hello_name about to start")
            await browser.close()
    finally:
        await stop_processes([process])
        await kill_processes([process])
    assert process.returncode == 0
