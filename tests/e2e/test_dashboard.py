"""The live dashboard in a real headless browser (Debian's chromium, driven by Selenium through
chromium-driver), on the lab: the page shows the load balancer and its 3 next hops installed at
the router; an amphora frozen in the lab shows as failed and then replaced on the same page,
without a reload; a tenant's page shows no other tenant's load balancer, and its owner without
admin rights sees its next hops but not the router's name. With ``L3DIST_SCREENSHOTS`` set to
a directory, the main views are saved there (``docs/screenshots/`` holds the ones made so)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from l3dist_lab import site
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    controller_on,
    create_web_lb,
    wait_for_ecmp,
    wait_until,
)

# SQLite only: the page reads the API, whatever its database.
controller = controller_on("sqlite")


@pytest.fixture(scope="module")
def web_lb(controller: Controller, distributor: dict[str, Any]) -> dict[str, Any]:
    lb = create_web_lb(controller, distributor, 3)
    wait_for_ecmp(controller, lb, 3)
    return lb


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless chromium whose profile and temporary files are all under tmp_path (chromium
    otherwise leaves ``org.chromium.Chromium.*`` directories in /tmp)."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "the test command installs chromium and chromium-driver"
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1500,1100", "--disable-gpu",
                     f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(argument)
    service = Service(chromedriver, env={**os.environ, "TMPDIR": str(tmp_path)})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: webdriver.Chrome, ctl: Controller, project: str, roles: str) -> None:
    driver.get(f"{ctl.url}/dashboard#project={project}&roles={roles}")
    wait_until(lambda: int(driver.find_element(By.TAG_NAME, "body").get_attribute(
        "data-updates") or 0) > 0, 15, "the page's first update")  # fmt: skip


def rows(driver: webdriver.Chrome, selector: str, key: str, value: str) -> dict[str, str]:
    """key -> value attributes of the rows matching selector, read in one script (the page
    redraws every second, so elements found in one call may be gone by the next)."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(r => [r.getAttribute(arguments[1]), r.getAttribute(arguments[2])]);",
        selector, key, value,
    )  # fmt: skip
    return {str(k): str(v) for k, v in found}


def next_hops(driver: webdriver.Chrome, lb: dict[str, Any]) -> dict[str, str]:
    """Next hop -> state, as the page shows them for the load balancer's VIP."""
    selector = f'[data-lb-id="{lb["id"]}"] tr[data-address="{lb["vip_address"]}"]'
    return rows(driver, selector, "data-next-hop", "data-state")


def amphora_health(driver: webdriver.Chrome, lb: dict[str, Any]) -> dict[str, str]:
    selector = f'[data-lb-id="{lb["id"]}"] tr[data-amphora-id]'
    return rows(driver, selector, "data-amphora-id", "data-health")


def count(driver: webdriver.Chrome, selector: str) -> int:
    return int(driver.execute_script("return document.querySelectorAll(arguments[0]).length;",
                                     selector))  # fmt: skip


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    if directory := os.environ.get("L3DIST_SCREENSHOTS"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(directory) / f"{name}.png"))


def test_the_page_follows_a_failover_without_a_reload(
    controller: Controller, web_lb: dict[str, Any], browser: webdriver.Chrome
) -> None:
    ctl, lb, page = controller, web_lb, browser
    open_page(page, ctl, "admin", "admin")
    loaded_at = page.find_element(By.TAG_NAME, "body").get_attribute("data-loaded-at")
    hops = {a["frontend_ip"] for a in amphorae_of(ctl, lb["id"])}
    wait_until(lambda: next_hops(page, lb) == dict.fromkeys(hops, "installed"), 20,
               "3 next hops installed on the page")  # fmt: skip
    wait_until(lambda: set(amphora_health(page, lb).values()) == {"healthy"}, 10, "healthy")
    assert count(page, "#routers [data-router]") == 1  # the admin sees the ToR's sessions
    screenshot(page, "dashboard")

    victim = amphorae_of(ctl, lb["id"])[0]
    frozen = ctl.site.host_of(victim)
    site.freeze(frozen)
    try:
        wait_until(lambda: amphora_health(page, lb).get(victim["id"]) in ("silent", "failing_over"),
                   15, "the frozen amphora failed on the page")  # fmt: skip
        screenshot(page, "dashboard-failover")
        wait_until(lambda: victim["id"] not in amphora_health(page, lb)
                   and len(next_hops(page, lb)) == 3
                   and set(next_hops(page, lb).values()) == {"installed"}
                   and victim["frontend_ip"] not in next_hops(page, lb),
                   90, "the replacement on the page")  # fmt: skip
    finally:
        site.thaw(frozen)
    events = [
        e.get_attribute("data-event") for e in page.find_elements(By.CSS_SELECTOR, "[data-event]")
    ]
    assert any("failover" in (e or "") for e in events), events
    # The same page all along: no reload happened.
    assert page.find_element(By.TAG_NAME, "body").get_attribute("data-loaded-at") == loaded_at
    screenshot(page, "dashboard-replaced")


def test_a_tenants_page_shows_only_its_own(
    controller: Controller, web_lb: dict[str, Any], browser: webdriver.Chrome
) -> None:
    ctl, lb, page = controller, web_lb, browser
    open_page(page, ctl, "someone-else", "member")
    assert count(page, "[data-lb-id]") == 0
    assert lb["vip_address"] not in page.find_element(By.TAG_NAME, "main").text
    screenshot(page, "dashboard-other-tenant")
    # The owner without admin rights: its next hops, routers by position only.
    page.delete_all_cookies()
    page.execute_script("sessionStorage.clear()")
    open_page(page, ctl, lb["project_id"], "member")
    wait_until(lambda: len(next_hops(page, lb)) == 3, 15, "its next hops")
    shown = rows(page, f'[data-lb-id="{lb["id"]}"] tr[data-router]', "data-router", "data-state")
    assert set(shown) == {"router-1"}
    assert count(page, "#routers [data-router]") == 0
    screenshot(page, "dashboard-tenant")
