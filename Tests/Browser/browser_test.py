#!/usr/bin/env python3
"""Drives the /client and /admin pages in headless Chromium against a running cluster.

Started by Tests/IntegrationTests/BrowserTests.swift, which brings up Redis, two nodes and
nginx and passes their addresses. Exits 0 when every check passed; prints what failed
otherwise. Screenshots go to --screenshots.
"""
import argparse
import json
import os
import signal
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select


class Failure(Exception):
    pass


def wait_for(what, condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the page may be mid-update
            last_error = error
        time.sleep(0.05)
    raise Failure(f"timed out after {seconds}s waiting for {what}" + (f" ({last_error})" if last_error else ""))


def click(page, selector, what):
    """Clicks an element the page may be rebuilding: the admin page redraws its tables
    every second, so a row found a moment ago can be gone when it is clicked."""
    def attempt():
        page.find_element(By.CSS_SELECTOR, selector).click()
        return True
    wait_for(what, attempt)


def node_of(base, client_id):
    """The node a client id lands on through nginx (from its __connected event)."""
    with urllib.request.urlopen(f"{base}/api/sse/subscribe/{client_id}", timeout=5) as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data:"):
                return json.loads(line[5:])["nodeId"]
    raise Failure(f"no __connected for {client_id}")


def publish(base, body):
    request = urllib.request.Request(
        f"{base}/api/sse/notify", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def browser(chromium, chromedriver):
    options = Options()
    options.binary_location = chromium
    for argument in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    ]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


class Page:
    def __init__(self, driver, handle):
        self.driver = driver
        self.handle = handle

    def focus(self):
        self.driver.switch_to.window(self.handle)
        return self.driver

    def text(self, element_id):
        return self.focus().find_element(By.ID, element_id).text

    def state(self):
        return self.text("state")

    def node(self):
        return self.focus().execute_script("return document.body.dataset.node || ''")

    def toasts(self):
        return [toast.text for toast in self.focus().find_elements(By.CSS_SELECTOR, "#toasts .toast")]

    def events(self):
        return self.text("events")

    def screenshot(self, directory, name):
        path = os.path.join(directory, name)
        self.focus().save_screenshot(path)
        return path


def open_page(driver, url, first=False):
    if not first:
        driver.switch_to.new_window("window")
    driver.get(url)
    return Page(driver, driver.current_window_handle)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nginx", required=True)
    parser.add_argument("--node-url", action="append", required=True, help="node base URLs, in order")
    parser.add_argument("--node-id", action="append", required=True)
    parser.add_argument("--node-pid", action="append", type=int, required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--secure-url", help="a node with credentials configured")
    parser.add_argument("--admin-key")
    parser.add_argument("--publisher-key")
    parser.add_argument("--token", help="a subscriber token for carol on the secure node")
    arguments = parser.parse_args()
    os.makedirs(arguments.screenshots, exist_ok=True)
    urls = dict(zip(arguments.node_id, arguments.node_url))
    pids = dict(zip(arguments.node_id, arguments.node_pid))

    # alice's node is "A"; the other is "B". A second client lands on B.
    node_a = node_of(arguments.nginx, "alice")
    node_b = next(node for node in arguments.node_id if node != node_a)
    other = next(name for name in (f"bob{index}" for index in range(200)) if node_of(arguments.nginx, name) == node_b)
    print(f"alice is on {node_a}; {other} is on {node_b}")

    driver = browser(arguments.chromium, arguments.chromedriver)
    try:
        # 1. /client through nginx, joined as alice by a shareable link; /admin on node B.
        alice = open_page(driver, f"{arguments.nginx}/client?clientId=alice&channels=orders,alerts", first=True)
        wait_for("alice's page to open", lambda: alice.state() == "open")
        wait_for("alice's page to show its node", lambda: alice.node() == node_a)
        admin = open_page(driver, f"{urls[node_b]}/admin")
        wait_for("alice in the admin's client list", lambda: admin.focus().find_elements(
            By.CSS_SELECTOR, "#clients tr[data-client='alice']"))
        wait_for("both nodes in the admin's node table",
                 lambda: len(admin.focus().find_elements(By.CSS_SELECTOR, "#nodes tr")) == 2)

        # 2. A notification to alice from the admin form: the toast shows within 2 s.
        page = admin.focus()
        click(page, "#clients tr[data-client='alice'] button", "a click on alice's Select")
        if page.find_element(By.ID, "target").get_attribute("value") != "alice":
            raise Failure("selecting alice did not fill the target")
        page.find_element(By.ID, "event-name").clear()
        page.find_element(By.ID, "event-name").send_keys("notification")
        payload = page.find_element(By.ID, "payload")
        payload.clear()
        payload.send_keys(json.dumps({"notificationType": "success", "title": "Hello alice",
                                      "message": "Sent from the admin page", "duration": 8000}))
        page.find_element(By.ID, "send-button").click()
        answer = wait_for("the admin's answer", lambda: admin.text("result") if "Sent:" in admin.text("result") else None)
        if "Sent: true" not in answer or "connections: 1" not in answer:
            raise Failure(f"unexpected answer on the admin page: {answer}")
        sent_at = time.monotonic()
        wait_for("the toast on alice's page",
                 lambda: any("Hello alice" in toast and "Sent from the admin page" in toast for toast in alice.toasts()),
                 seconds=2.0)
        print(f"toast shown {time.monotonic() - sent_at:.2f} s after the answer")
        alice.screenshot(arguments.screenshots, "client-toast.png")
        admin.screenshot(arguments.screenshots, "admin.png")

        # 3. A broadcast from the admin reaches client pages on both nodes.
        bob = open_page(driver, f"{arguments.nginx}/client?clientId={other}")
        wait_for(f"{other}'s page to open on {node_b}", lambda: bob.state() == "open" and bob.node() == node_b)
        wait_for(f"{other} in the admin's client list", lambda: admin.focus().find_elements(
            By.CSS_SELECTOR, f"#clients tr[data-client='{other}']"))
        page = admin.focus()
        Select(page.find_element(By.ID, "target-kind")).select_by_value("broadcast")
        payload = page.find_element(By.ID, "payload")
        payload.clear()
        payload.send_keys(json.dumps({"notificationType": "info", "title": "To everyone",
                                      "message": "A broadcast", "duration": 8000}))
        before = admin.text("result")
        page.find_element(By.ID, "send-button").click()
        answer = wait_for("the broadcast's answer",
                          lambda: admin.text("result") if admin.text("result") != before else None)
        # The count comes from the registry, refreshed every second: at least the two pages.
        if "Sent: true" not in answer or int(answer.split("connections: ")[1].split(",")[0]) < 2:
            raise Failure(f"unexpected answer to the broadcast: {answer}")
        for client in (alice, bob):
            wait_for("the broadcast toast", lambda: any("To everyone" in toast for toast in client.toasts()), seconds=2.0)
        bob.screenshot(arguments.screenshots, "client-broadcast.png")

        # An update goes to the log table.
        publish(urls[node_b], {"clientId": "alice", "event": "update",
                               "payload": {"entity": "order", "action": "created", "payload": {"id": 7}}})
        wait_for("the update row", lambda: "order" in alice.text("updates") and "created" in alice.text("updates"))

        # 4. Node A stops: alice's page reconnects through nginx to B and shows what was
        # published while it was away.
        os.kill(pids[node_a], signal.SIGKILL)
        wait_for("alice's page to show reconnecting", lambda: alice.state().startswith("reconnecting"))
        alice.screenshot(arguments.screenshots, "client-reconnecting.png")
        answer = publish(urls[node_b], {"clientId": "alice", "event": "notification", "payload": {
            "notificationType": "warning", "title": "While you were away", "message": "Published during the outage"}})
        if not answer.get("ok"):
            raise Failure(f"publishing during the outage failed: {answer}")
        if alice.state() == "open":
            raise Failure("the page was open again before the event was published")
        wait_for("alice's page to come back on B", lambda: alice.state() == "open" and alice.node() == node_b,
                 seconds=15.0)
        wait_for("the event published during the outage",
                 lambda: "While you were away" in alice.events(), seconds=5.0)
        resume = alice.text("resume")
        if node_b not in resume or "resuming after" not in resume:
            raise Failure(f"the page does not say it resumed: {resume!r}")
        alice.screenshot(arguments.screenshots, "client-resumed.png")

        # Phone width: nothing overflows sideways.
        page = alice.focus()
        page.set_window_size(390, 844)
        time.sleep(0.3)
        overflow = page.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            raise Failure(f"the client page is {overflow}px wider than a phone screen")
        alice.screenshot(arguments.screenshots, "client-phone.png")
        page.set_window_size(1280, 1000)

        # 5. With credentials on, /admin asks for them and /client for a token.
        if arguments.secure_url:
            secure_admin = open_page(driver, f"{arguments.secure_url}/admin")
            wait_for("the credentials form", lambda: secure_admin.focus().find_element(By.ID, "credentials").is_displayed())
            wait_for("the refusal without a key", lambda: "Cannot read the cluster" in secure_admin.text("cluster-error"))
            page = secure_admin.focus()
            page.find_element(By.ID, "admin-key").send_keys(arguments.admin_key)
            page.find_element(By.ID, "publisher-key").send_keys(arguments.publisher_key)
            page.find_element(By.CSS_SELECTOR, "#credentials-form button").click()
            wait_for("the cluster with the admin key",
                     lambda: len(secure_admin.focus().find_elements(By.CSS_SELECTOR, "#nodes tr")) == 1)
            refused = open_page(driver, f"{arguments.secure_url}/client?clientId=carol")
            wait_for("the token field", lambda: refused.focus().find_element(By.ID, "token").is_displayed())
            wait_for("the refused page to say why", lambda: refused.state() == "closed"
                     and "401" in refused.text("join-error") and "token" in refused.text("join-error"))
            carol = open_page(driver, f"{arguments.secure_url}/client?clientId=carol&token={arguments.token}")
            wait_for("carol's page to open with her token", lambda: carol.state() == "open")
            wait_for("carol in the secure admin's list", lambda: secure_admin.focus().find_elements(
                By.CSS_SELECTOR, "#clients tr[data-client='carol']"))
            page = secure_admin.focus()
            click(page, "#clients tr[data-client='carol'] button", "a click on carol's Select")
            payload = page.find_element(By.ID, "payload")
            payload.clear()
            payload.send_keys(json.dumps({"notificationType": "success", "title": "Hello carol", "message": "With keys"}))
            page.find_element(By.ID, "send-button").click()
            wait_for("the toast for carol", lambda: any("Hello carol" in toast for toast in carol.toasts()), seconds=2.0)
            secure_admin.screenshot(arguments.screenshots, "admin-with-keys.png")
            carol.screenshot(arguments.screenshots, "client-with-token.png")
        print("browser checks passed")
        return 0
    except Failure as failure:
        print(f"FAILED: {failure}")
        try:
            driver.save_screenshot(os.path.join(arguments.screenshots, "failure.png"))
            for entry in driver.get_log("browser"):
                print("console:", entry)
        except Exception:
            pass
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
