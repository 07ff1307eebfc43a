"""An import as a demo sales rep does it in a real browser: a GBK CSV from Chinese Excel is
uploaded, its columns are mapped from the headers, the check lists the bad rows, the import
runs in the background while the progress bar moves, and the refused rows download with their
reasons. No request leaves the machine and the console stays clean."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from browser_support import UI, log_in, submit

pytestmark = pytest.mark.browser

REP, REP_PASSWORD = "wangfang", "demo1234"
ROWS = 150


def _gbk_csv(folder: Path) -> Path:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["客户名称", "手机", "城市", "行业", "备注"])
    for n in range(ROWS):
        writer.writerow([f"嘉兴导入测试{n}号有限公司", f"199{n:08d}", "嘉兴", "制造业", ""])
    writer.writerow(["", "19999999999", "嘉兴", "制造业", "没有名称"])
    writer.writerow(["嘉兴坏电话有限公司", "12345", "嘉兴", "制造业", ""])
    path = folder / "老系统客户.csv"
    path.write_bytes(text.getvalue().encode("gbk"))
    return path


def test_a_rep_imports_a_gbk_file_with_progress_and_refused_rows(ui: UI) -> None:
    page = ui.page
    try:
        log_in(ui, REP, REP_PASSWORD)
        ui.goto("/imports/new")
        page.set_input_files("#file", str(_gbk_csv(ui.tmp_path)))
        submit(ui)
        assert "/mapping" in page.url, page.content()[-2000:]
        for position, field in enumerate(["name", "phone", "city", "industry", "notes"]):
            chosen = page.locator(f"select[name=column_{position}]").input_value()
            assert chosen == field, (position, chosen)
        page.select_option("#key_field", "phone")
        page.locator("#crm-import-mapping button[type=submit]").click()
        page.wait_for_load_state()

        page.locator("#crm-import-check").click()
        page.wait_for_selector("#crm-import-problems", timeout=60_000)
        problems = page.locator("#crm-import-problems").inner_text()
        assert "此项为必填项" in problems and "12345" in problems, problems

        page.locator("#crm-import-start").click()
        # The page follows the import, then shows it anew once done.
        page.wait_for_selector("#crm-import-job[data-status=done]", timeout=60_000)
        figures = page.locator("#crm-import-figures").inner_text()
        assert f"已新增 {ROWS}" in figures and "被拒绝 2" in figures, figures
        bar = page.locator("#crm-import-bar")
        assert bar.get_attribute("aria-valuenow") == str(ROWS + 2), bar.evaluate("e => e.outerHTML")
        assert bar.inner_text() == "100%"

        with page.expect_download() as download:
            page.locator("a[href*='/report.csv']").click()
        lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
        assert len(lines) == 3 and "此项为必填项" in lines[1], lines

        ui.goto("/customers/list/?_flt_0_city=嘉兴")
        assert f"嘉兴导入测试{ROWS - 1}号有限公司" in page.content()  # newest first
    except BaseException:
        ui.screenshot_on_failure()
        raise
    foreign = ui.traffic.foreign_requests()
    assert not foreign, f"requests left this machine: {foreign}"
    assert not ui.traffic.errors, "\n".join(ui.traffic.errors)
