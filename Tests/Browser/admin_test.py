#!/usr/bin/env python3
"""Drives the /admin page in headless Chromium against a three-node cluster under a light
load: the charts per node over time, who is online on a channel (the presence view, with
joins and leaves as they come), and the button that ends a client's streams.

Started by Tests/IntegrationTests/BrowserTests.swift, which brings up Redis and three nodes
with --presence, holds a few users' streams on the channel lobby and publishes on it about
ten times a second. Exits 0 when every check passed; prints what failed otherwise. The
screenshot goes to --screenshots (admin-cluster.png).
"""
import argparse
import json
import sys
import threading
import urllib.request

from selenium.webdriver.common.by import By

from browser_test import Failure, browser, click, open_page, wait_for


class Stream(threading.Thread):
    """One SSE stream read on a thread: its events' names, in order, until it closes."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.events = []
        self.closed = threading.Event()
        self.connected = threading.Event()

    def run(self):
        try:
            with urllib.request.urlopen(self.url, timeout=60) as response:
                for raw in response:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event:"):
                        name = line[6:].strip()
                        self.events.append(name)
                        if name == "__connected":
                            self.connected.set()
        except Exception:
            pass
        finally:
            self.closed.set()


def latest(page, chart):
    return json.loads(page.focus().find_element(By.ID, chart).get_attribute("data-latest") or "{}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--node-url", action="append", required=True)
    parser.add_argument("--node-id", action="append", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--users", required=True, help="comma-separated users the test holds on lobby")
    arguments = parser.parse_args()
    users = arguments.users.split(",")

    driver = browser(arguments.chromium, arguments.chromedriver)
    try:
        admin = open_page(driver, f"{arguments.node_url[0]}/admin", first=True)
        wait_for("the three nodes in the node table",
                 lambda: len(admin.focus().find_elements(By.CSS_SELECTOR, "#nodes tr")) == 3)
        # The charts fill as the page polls: a line per node, publishes and deliveries above 0.
        wait_for("ten points on the charts",
                 lambda: int(admin.focus().find_element(By.ID, "chart-connections").get_attribute("data-points")
                             or "0") >= 10, seconds=20.0)
        for chart in ("chart-connections", "chart-deliveries", "chart-publishes"):
            nodes = latest(admin, chart)
            if sorted(nodes) != sorted(arguments.node_id):
                raise Failure(f"{chart} has lines for {sorted(nodes)}, not {sorted(arguments.node_id)}")
        wait_for("publishes per second above 0",
                 lambda: sum(latest(admin, "chart-publishes").values()) > 0, seconds=10.0)
        wait_for("deliveries per second above 0 on every node",
                 lambda: all(value > 0 for value in latest(admin, "chart-deliveries").values()), seconds=10.0)
        legend = admin.text("legend")
        for node in arguments.node_id:
            if node not in legend:
                raise Failure(f"the legend does not name {node}: {legend!r}")

        # Who is online on lobby: the users the test holds, then zoe joins and is ended.
        page = admin.focus()
        page.find_element(By.ID, "presence-channel").send_keys("lobby")
        page.find_element(By.CSS_SELECTOR, "#presence-form button").click()
        wait_for("the users on lobby", lambda: sorted(
            row.get_attribute("data-user") for row in admin.focus().find_elements(By.CSS_SELECTOR, "#presence-users tr")
        ) == sorted(users))
        zoe = Stream(f"{arguments.node_url[2]}/api/sse/subscribe/zoe-tab?userId=zoe&channels=lobby")
        zoe.start()
        if not zoe.connected.wait(10):
            raise Failure("zoe's stream did not connect")
        wait_for("zoe's join in the log", lambda: "join zoe" in admin.text("presence-log"))
        wait_for("zoe among the users", lambda: admin.focus().find_elements(
            By.CSS_SELECTOR, "#presence-users tr[data-user='zoe']"))
        wait_for("zoe-tab in the client list", lambda: admin.focus().find_elements(
            By.CSS_SELECTOR, "#clients tr[data-client='zoe-tab']"), seconds=5.0)
        # Half a minute of the charts for the picture, tall enough for the whole page.
        wait_for("25 points on the charts",
                 lambda: int(admin.focus().find_element(By.ID, "chart-connections").get_attribute("data-points")
                             or "0") >= 25, seconds=30.0)
        admin.focus().set_window_size(1280, 1900)
        admin.screenshot(arguments.screenshots, "admin-cluster.png")
        click(admin.focus(), "#clients tr[data-client='zoe-tab'] button.danger", "a click on zoe-tab's End")
        wait_for("the admin's answer", lambda: "Ended 1 stream(s) of zoe-tab" in admin.text("result"))
        if not zoe.closed.wait(10):
            raise Failure("zoe's stream was not ended")
        if "__disconnect" not in zoe.events:
            raise Failure(f"zoe's stream ended without __disconnect: {zoe.events}")
        wait_for("zoe's leave in the log", lambda: "leave zoe" in admin.text("presence-log"))
        wait_for("zoe gone from the users", lambda: not admin.focus().find_elements(
            By.CSS_SELECTOR, "#presence-users tr[data-user='zoe']"))
        print("admin checks passed")
    except Failure as failure:
        print(f"FAILED: {failure}")
        try:
            driver.save_screenshot(f"{arguments.screenshots}/admin-failure.png")
        except Exception:
            pass
        sys.exit(1)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
