// The console in a real browser: Playwright (playwright-core) driving Debian's Chromium
// (headless) against a real `gureum up` on a free port with a temporary data dir and real
// instances. One journey, step by step, with a screenshot of each step kept under
// target/browser-artifacts/ (set ARTIFACTS to put them elsewhere):
//
//   signed-out requests refused; sign in; CSRF refused; create a key pair (the .pem downloads
//   and is a valid private key); launch a t2.micro from the default image through the wizard
//   with SSH and HTTP allowed; see it reach `running` without a reload; the Connect tab's
//   command works with the downloaded key; port 8080 opened in the rule editor reaches a
//   server on the instance; monitoring graphs; an EBS volume created (seen `available`
//   without a reload), attached to the instance (seen `in-use`, and as /dev/xvdf inside it),
//   detached, grown, snapshotted (seen `completed`), both deleted; stop, start, terminate; a
//   second account sees none of it.
//
// Needs root, runc and network namespaces (like the e2e instance tests); exits 0 with
// "skipped" otherwise. Every instance, volume and snapshot it made is removed and the server
// stopped, also when a step fails.

import { chromium } from "playwright-core";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const GUREUM = process.env.GUREUM_BIN || path.join(ROOT, "target/debug/gureum");
const ART = process.env.ARTIFACTS || path.join(ROOT, "target/browser-artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
  "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR"];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function skipReason() {
  if (process.getuid && process.getuid() !== 0) return "not root";
  for (const tool of ["runc", "ip", "nft", "ssh", "ssh-keygen"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0) {
      return `${tool} not installed`;
    }
  }
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} not installed`;
  if (!fs.existsSync(GUREUM)) return `${GUREUM} not built`;
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}

async function waitFor(pred, timeoutMs, what, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await pred();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}

class Server {
  constructor(dir) {
    this.dir = dir;
    this.data = path.join(dir, "data");
  }

  async start() {
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.logPath = path.join(ART, "gureum.log");
    const log = fs.openSync(this.logPath, "w");
    this.proc = spawn(GUREUM, ["--data-dir", this.data, "up", "--listen", `127.0.0.1:${this.port}`],
      { stdio: ["ignore", log, log] });
    this.exited = new Promise((r) => this.proc.on("exit", r));
    await waitFor(async () => (await fetch(this.base + "/healthz")).ok, 20000, "gureum to be ready", 50);
    return this;
  }

  cli(args, input) {
    const r = spawnSync(GUREUM, ["--data-dir", this.data, ...args], { input, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`gureum ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  }

  adminKeys() {
    const c = fs.readFileSync(path.join(this.data, "credentials"), "utf8");
    return [/aws_access_key_id\s*=\s*(\S+)/.exec(c)[1], /aws_secret_access_key\s*=\s*(\S+)/.exec(c)[1]];
  }

  async waitForDefaultImage() {
    // The default image is built (or taken from /var/cache/gureum) on first start.
    return waitFor(() => /\bavailable\b.*debian-12/.test(this.cli(["image", "list"])), 20 * 60000,
      "the default image", 1000);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 15000);
    await this.exited;
    clearTimeout(t);
  }
}

// --- the journey ---------------------------------------------------------------------------

const results = [];
let shot = 0;

async function step(page, name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - started });
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - started, error: e });
    console.log(`FAIL ${name}: ${e.stack || e}`);
    throw e;
  } finally {
    if (page && !page.isClosed()) {
      shot++;
      const file = path.join(ART, `${String(shot).padStart(2, "0")}-${name.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    }
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function signIn(page, base, how) {
  await page.goto(base + "/");
  if (how.password) {
    await page.click('[data-tab="password"]');
    await page.fill("#account", how.account);
    await page.fill("#pw", how.password);
    await page.click("#password button[type=submit]");
  } else {
    await page.fill("#access_key_id", how.key[0]);
    await page.fill("#secret_access_key", how.key[1]);
    await page.click("#key button[type=submit]");
  }
  await page.waitForURL(/\/console$/);
}

/// An extra screenshot (for the docs) besides the one after each step.
async function snap(page, name) {
  // A viewport as tall as the page (a full-page capture would paint the sticky top bar
  // where the page was scrolled to).
  const vp = page.viewportSize();
  const h = await page.evaluate(() => document.documentElement.scrollHeight);
  if (h > vp.height) await page.setViewportSize({ width: vp.width, height: h });
  await page.screenshot({ path: path.join(ART, `x-${name}.png`) });
  if (h > vp.height) await page.setViewportSize(vp);
}

async function csrfOf(page) {
  return page.locator('meta[name="csrf"]').getAttribute("content");
}

async function rowState(page, id) {
  return page.locator(`#instances tr[data-id="${id}"]`).getAttribute("data-state");
}

/// Wait, on an open page, for row `id` of `table` to show `state` (null: to leave the
/// table) — without any reload or navigation, and with no request but the page's one live
/// stream. A row that reaches `giveUp` instead ends the wait at once.
async function waitLiveRow(page, table, id, state, timeoutMs, giveUp = null) {
  await page.evaluate(() => { window.__noReload = true; });
  const requests = [];
  // The favicon is fetched whenever the browser gets to it after a load: not the page's doing.
  const onReq = (r) => { if (!r.url().includes("/favicon")) requests.push(r.url()); };
  page.on("request", onReq);
  try {
    await page.waitForFunction(([table, id, state, giveUp]) => {
      const tr = document.querySelector(`${table} tr[data-id="${id}"]`);
      if (state === null) return !tr;
      return tr && ((tr.dataset.state === state && tr.querySelector(".badge").textContent.trim().startsWith(state)) ||
        tr.dataset.state === giveUp);
    }, [table, id, state, giveUp], { timeout: timeoutMs, polling: 100 });
  } finally {
    page.off("request", onReq);
  }
  assert(await page.evaluate(() => window.__noReload === true), "the page was reloaded");
  assert(requests.length === 0, `the page made requests while waiting: ${requests.join(", ")}`);
}

/// Wait, on an open instances page, for `id` to show `state` (see waitLiveRow); an instance
/// that terminated on its own (a failed launch) ends the wait at once, with its reason.
async function waitLiveState(page, id, state, timeoutMs) {
  await waitLiveRow(page, "#instances", id, state, timeoutMs, "terminated");
  const now = await rowState(page, id);
  if (now !== state) {
    const detail = await page.request.get(`${new URL(page.url()).origin}/console/instances/${id}`);
    const reason = /State reason<\/dt><dd>([^<]*)/.exec(await detail.text());
    throw new Error(`${id} is ${now}, not ${state}: ${reason ? reason[1] : "no reason shown"}`);
  }
}

/// Click what posts a form and wait for the page it leads to.
async function submitAndLoad(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
}

function ssh(dir, command, remote) {
  // The Connect tab's command, as shown, with non-interactive options added.
  const words = command.trim().split(/\s+/);
  assert(words[0] === "ssh" && words[1] === "-i", `unexpected command ${command}`);
  return spawnSync("ssh", [...SSH_OPTS, ...words.slice(1), remote], { cwd: dir, encoding: "utf8", timeout: 30000 });
}

async function httpGet(url, timeoutMs = 3000) {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: r.status, body: await r.text() };
  } catch (e) {
    return { status: 0, error: String(e) };
  }
}

async function main() {
  const why = skipReason();
  if (why) {
    console.log(`skipped: the console browser suite needs ${why}`);
    return 0;
  }
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith(".png")) fs.rmSync(path.join(ART, f));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gureum-browser-"));
  const downloads = path.join(tmp, "downloads");
  fs.mkdirSync(downloads);
  const server = await new Server(tmp).start();
  const base = server.base;
  console.log(`gureum up on ${base}; waiting for the default image`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const alice = await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true });
  const page = await alice.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  let instanceId = null;
  let failed = false;
  try {
    await server.waitForDefaultImage();

    await step(null, "signed-out requests are refused", async () => {
      const anon = await browser.newContext();
      const r = await anon.request.get(base + "/console/instances", { maxRedirects: 0, headers: { Accept: "text/html" } });
      assert(r.status() === 303 && r.headers()["location"].startsWith("/console/signin"), `page: ${r.status()}`);
      const ev = await anon.request.get(base + "/console/events?view=instances");
      assert(ev.status() === 401, `events: ${ev.status()}`);
      const post = await anon.request.post(base + "/console/instances/action", { form: { action: "stop", id: "i-0" } });
      assert(post.status() === 401, `post: ${post.status()}`);
      // The sign-in form itself needs its own token.
      const si = await anon.request.post(base + "/console/signin", { form: { method: "key", access_key_id: "x", secret_access_key: "y" } });
      assert(si.status() === 403, `sign-in without token: ${si.status()}`);
      // The API still answers SDKs on / (an unsigned Query request is an AWS error, not a page).
      const api = await anon.request.post(base + "/", { form: { Action: "DescribeRegions", Version: "2016-11-15" } });
      assert(api.status() === 401 || api.status() === 400, `api: ${api.status()}`);
      assert((await api.text()).includes("<Response><Errors>"), "API error envelope");
      await anon.close();
    });

    await step(page, "sign in", async () => {
      await page.goto(base + "/");
      await snap(page, "signin");
      await page.fill("#access_key_id", server.adminKeys()[0]);
      await page.fill("#secret_access_key", "wrong");
      await page.click("#key button[type=submit]");
      await page.locator(".alert.err").waitFor();
      assert((await page.locator(".alert.err").textContent()).includes("incorrect"), "wrong secret refused");
      await signIn(page, base, { key: server.adminKeys() });
      const cookies = await alice.cookies(base);
      const s = cookies.find((c) => c.name === "gureum_session");
      assert(s && s.httpOnly && s.sameSite === "Strict", `session cookie ${JSON.stringify(s)}`);
      assert(await page.locator("#counts").isVisible(), "dashboard counts");
    });

    await step(page, "CSRF is refused", async () => {
      const noToken = await page.request.post(base + "/console/key-pairs/create", { form: { key_name: "csrf-test" } });
      assert(noToken.status() === 403, `no token: ${noToken.status()}`);
      const wrong = await page.request.post(base + "/console/key-pairs/create", { form: { key_name: "csrf-test", _csrf: "0".repeat(64) } });
      assert(wrong.status() === 403, `wrong token: ${wrong.status()}`);
      const token = await csrfOf(page);
      const cross = await page.request.post(base + "/console/key-pairs/create", {
        form: { key_name: "csrf-test", _csrf: token }, headers: { Origin: "http://evil.example" },
      });
      assert(cross.status() === 403, `cross-site: ${cross.status()}`);
      await page.goto(base + "/console/key-pairs");
      assert((await page.locator("text=csrf-test").count()) === 0, "nothing was created");
    });

    let keyFile;
    await step(page, "create a key pair in the wizard and download the pem", async () => {
      await page.goto(base + "/console/launch");
      await page.click("text=Create new key pair");
      await page.fill("#key-dialog #key-name", "console-demo");
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.click("#key-dialog button[type=submit]"),
      ]);
      assert(download.suggestedFilename() === "console-demo.pem", download.suggestedFilename());
      keyFile = path.join(downloads, download.suggestedFilename());
      await download.saveAs(keyFile);
      fs.chmodSync(keyFile, 0o600);
      const r = spawnSync("ssh-keygen", ["-y", "-f", keyFile], { encoding: "utf8" });
      assert(r.status === 0 && r.stdout.startsWith("ssh-rsa "), `ssh-keygen: ${r.stderr}`);
      assert((await page.inputValue("#key_name")) === "console-demo", "the new key pair is selected");
      // The same name again: the API's error next to the field, no download.
      await page.click("text=Create new key pair");
      await page.fill("#key-dialog #key-name", "console-demo");
      await page.click("#key-dialog button[type=submit]");
      await page.waitForSelector("#key-dialog .field-error");
      assert((await page.textContent("#key-dialog .field-error")).includes("InvalidKeyPair.Duplicate"), "duplicate refused");
      await page.click("#key-dialog button[data-close]");
    });

    await step(page, "launch a t2.micro through the wizard", async () => {
      await page.fill("#name", "console-web");
      const image = page.locator('input[name="image_id"]:checked');
      assert((await image.getAttribute("data-label")).startsWith("debian-12"), "the default image is chosen");
      await page.check("#type-t2\\.micro");
      assert((await page.inputValue("#key_name")) === "console-demo", "key pair");
      assert(await page.isChecked('input[name="allow_ssh"]'), "SSH allowed by default");
      await page.check('input[name="allow_http"]');
      assert((await page.textContent("#sum-sg")).includes("HTTP"), "summary shows the rules");
      await snap(page, "launch-wizard");
      await page.click("button:text('Launch instance')");
      await page.waitForSelector(".success");
      instanceId = (await page.locator("a.instance-link code").first().textContent()).trim();
      assert(/^i-[0-9a-f]{17}$/.test(instanceId), instanceId);
    });

    await step(page, "the instance reaches running without a reload", async () => {
      await page.goto(base + "/console/instances");
      await page.waitForSelector(`#instances tr[data-id="${instanceId}"]`);
      await waitLiveState(page, instanceId, "running", 120000);
      const ip = (await page.locator(`#instances tr[data-id="${instanceId}"] td.ip`).first().textContent()).trim();
      assert(/^\d+\.\d+\.\d+\.\d+$/.test(ip), `public ip ${ip}`);
    });

    let command;
    await step(page, "the Connect tab's command works with the downloaded key", async () => {
      await page.goto(`${base}/console/instances/${instanceId}?tab=connect`);
      command = (await page.textContent("#ssh-command")).trim();
      assert(/^ssh -i console-demo\.pem admin@\d+\.\d+\.\d+\.\d+$/.test(command), command);
      const out = await waitFor(() => {
        const r = ssh(downloads, command, "echo connected-as-$(whoami); nproc");
        return r.status === 0 && r.stdout.includes("connected-as-admin") ? r.stdout : null;
      }, 90000, "ssh with the Connect tab's command", 1000);
      assert(out.trim().endsWith("1"), `t2.micro has 1 vCPU: ${out}`);
    });

    await step(page, "open port 8080 in the rule editor and reach a server there", async () => {
      const ip = command.split("@")[1];
      const start = ssh(downloads, command,
        "mkdir -p /tmp/site && echo hello-from-console > /tmp/site/index.html && cd /tmp/site && (setsid nohup python3 -m http.server 8080 >/dev/null 2>&1 &) ; sleep 1; curl -s localhost:8080/");
      assert(start.stdout.includes("hello-from-console"), `server on the instance: ${start.stdout} ${start.stderr}`);
      const before = await httpGet(`http://${ip}:8080/`, 2000);
      assert(before.status === 0, `port 8080 closed before the rule: ${before.status}`);
      await page.goto(`${base}/console/instances/${instanceId}?tab=security`);
      await page.click("text=Edit inbound rules");
      await page.waitForSelector("#rule-editor");
      await page.click("text=Add rule");
      const row = page.locator("#rules tr").last();
      await row.locator("select[data-rule-type]").selectOption("Custom TCP");
      await row.locator("input[name=port]").fill("8080");
      await row.locator("select[data-source-kind]").selectOption("0.0.0.0/0");
      await row.locator("input[name=desc]").fill("demo server");
      await snap(page, "rule-editor");
      await page.click("button:text('Save rules')");
      await page.waitForSelector(".flash.ok");
      assert((await page.textContent(".flash.ok")).includes("1 added"), await page.textContent(".flash.ok"));
      assert((await page.locator("td:text-is('8080')").count()) === 1, "the rule is listed");
      const after = await waitFor(async () => {
        const r = await httpGet(`http://${ip}:8080/`);
        return r.status === 200 ? r : null;
      }, 20000, "port 8080 to open", 500);
      assert(after.body.includes("hello-from-console"), after.body);
    });

    await step(page, "monitoring graphs and console output", async () => {
      // Some work to see on the CPU graph (an instance from the warm pool did its boot
      // before the launch, so otherwise its CPU line may lie flat at zero).
      const burn = ssh(downloads, command, "timeout 3 sh -c 'while :; do :; done'; true");
      assert(burn.status === 0, `cpu burn: ${burn.stderr}`);
      await page.goto(`${base}/console/instances/${instanceId}?tab=monitoring`);
      await page.waitForSelector('figure[data-metric="cpu"] path.line', { timeout: 30000 });
      await page.waitForSelector('figure[data-metric="netIn"] path.line', { timeout: 30000 });
      await snap(page, "monitoring");
      const mem = await page.locator('figure[data-metric="mem"] figcaption').getAttribute("data-now");
      assert(/MiB/.test(mem) && parseFloat(mem) > 1, `memory ${mem}`);
      await page.goto(`${base}/console/instances/${instanceId}?tab=console`);
      assert((await page.textContent("pre.console")).length > 20, "console output");
    });

    // --- Elastic Block Store: a volume through its life, attached to the running instance.
    let volumeId, snapshotId;
    const volRow = () => page.locator(`#volumes tr[data-id="${volumeId}"]`);
    await step(page, "EBS: create a volume and see it become available without a reload", async () => {
      const detail = await (await page.request.get(`${base}/console/instances/${instanceId}`)).text();
      const zone = /Availability Zone<\/dt><dd>([^<]+)</.exec(detail)[1];
      await page.goto(base + "/console/volumes");
      await page.click("button:text('Create volume')");
      await page.selectOption("#volume-create-type", "gp3");
      assert(await page.isVisible("#volume-create-throughput"), "gp3 takes a throughput");
      await page.selectOption("#volume-create-type", "gp2");
      assert(!(await page.isVisible("#volume-create-iops")), "gp2 takes no IOPS");
      await page.selectOption("#volume-create-type", "gp3");
      await page.fill("#volume-create-size", "1");
      await page.selectOption("#volume-create-zone", zone);
      await page.fill("#volume-create-name", "console-data");
      await snap(page, "volume-create");
      await submitAndLoad(page, "#volume-create button[type=submit]");
      const flash = await page.textContent(".flash");
      const m = /Creating volume (vol-[0-9a-f]{17})/.exec(flash);
      assert(m, `created: ${flash}`);
      volumeId = m[1];
      await waitLiveRow(page, "#volumes", volumeId, "available", 60000, "error");
      assert((await volRow().getAttribute("data-state")) === "available", "the volume is available");
      assert((await volRow().textContent()).includes("console-data"), "its Name tag");
    });

    await step(page, "EBS: attach it to the running instance and see it there", async () => {
      await volRow().locator(`button[data-open="#attach-${volumeId}"]`).click();
      const dlg = page.locator(`#attach-${volumeId}`);
      await dlg.locator("select[name=instance_id]").selectOption(instanceId);
      assert((await dlg.locator("input[name=device]").inputValue()) === "/dev/sdf", "the next free device");
      await snap(page, "volume-attach");
      await submitAndLoad(page, `#attach-${volumeId} button[type=submit]`);
      const flash = await page.textContent(".flash");
      assert(flash.includes(`Attaching ${volumeId} to ${instanceId} as /dev/sdf`), flash);
      await waitLiveRow(page, "#volumes", volumeId, "in-use", 60000);
      await page.waitForFunction((id) => {
        const tr = document.querySelector(`#volumes tr[data-id="${id}"]`);
        return tr && !tr.querySelector(".st-attaching");
      }, volumeId, { timeout: 60000 });
      assert((await volRow().textContent()).includes(instanceId), "the row names the instance");
      const size = await waitFor(() => {
        const r = ssh(downloads, command, "test -b /dev/xvdf && sudo blockdev --getsize64 /dev/xvdf");
        return r.status === 0 ? r.stdout.trim() : null;
      }, 30000, "/dev/xvdf in the instance", 1000);
      assert(size === String(1 << 30), `1 GiB in the instance: ${size}`);
      await page.goto(`${base}/console/instances/${instanceId}?tab=storage`);
      const storage = await page.textContent("#instance-volumes");
      assert(storage.includes(volumeId) && storage.includes("/dev/sdf"), `storage tab: ${storage}`);
      await snap(page, "instance-storage");
      await page.goto(`${base}/console/volumes/${volumeId}`);
      assert((await page.getAttribute("#summary", "data-state")) === "in-use", "the volume's page");
      assert((await page.textContent("#summary")).includes(instanceId), "the volume's page names the instance");
      await snap(page, "volume-detail");
    });

    await step(page, "EBS: detach it and see it leave the instance", async () => {
      await page.goto(base + "/console/volumes");
      await volRow().locator("button:text-is('Detach')").click();
      await submitAndLoad(page, "dialog.confirm button.danger");
      await waitLiveRow(page, "#volumes", volumeId, "available", 60000);
      await waitFor(() => ssh(downloads, command, "test -e /dev/xvdf").status === 1, 30000,
        "/dev/xvdf to leave the instance", 1000);
    });

    await step(page, "EBS: grow it, then snapshot it and see the snapshot complete", async () => {
      // Nothing changed: AWS's refusal, shown as the API words it.
      await volRow().locator(`button[data-open="#modify-${volumeId}"]`).click();
      await submitAndLoad(page, `#modify-${volumeId} button[type=submit]`);
      let flash = await page.textContent(".flash");
      assert(flash.includes("InvalidParameterCombination: New parameters must be different from existing"), flash);
      await volRow().locator(`button[data-open="#modify-${volumeId}"]`).click();
      await page.fill(`#modify-${volumeId}-size`, "2");
      await submitAndLoad(page, `#modify-${volumeId} button[type=submit]`);
      flash = await page.textContent(".flash");
      assert(flash.includes(`Modifying ${volumeId}: 1 GiB gp3 → 2 GiB gp3`), flash);
      await volRow().locator(`button[data-open="#snapshot-${volumeId}"]`).click();
      await page.fill(`#snapshot-${volumeId}-desc`, "console snapshot");
      await submitAndLoad(page, `#snapshot-${volumeId} button[type=submit]`);
      flash = await page.textContent(".flash");
      const m = /Creating snapshot (snap-[0-9a-f]{17}) of/.exec(flash);
      assert(m, `snapshot: ${flash}`);
      snapshotId = m[1];
      await page.goto(base + "/console/snapshots");
      await waitLiveRow(page, "#snapshots", snapshotId, "completed", 120000, "error");
      const row = await page.textContent(`#snapshots tr[data-id="${snapshotId}"]`);
      assert(row.includes(volumeId) && row.includes("2 GiB") && row.includes("console snapshot"), row);
      await snap(page, "ebs-snapshots");
    });

    await step(page, "EBS: delete the snapshot and the volume", async () => {
      await page.locator(`#snapshots tr[data-id="${snapshotId}"] button:text-is('Delete')`).click();
      await submitAndLoad(page, "dialog.confirm button.danger");
      assert((await page.locator(`#snapshots tr[data-id="${snapshotId}"]`).count()) === 0, "the snapshot is gone");
      await page.goto(base + "/console/volumes");
      await snap(page, "ebs-volumes");
      await volRow().locator("button:text-is('Delete')").click();
      await submitAndLoad(page, "dialog.confirm button.danger");
      await waitLiveRow(page, "#volumes", volumeId, null, 60000);
      volumeId = null;
    });

    await step(page, "Elastic IP: allocate, associate, disassociate, release", async () => {
      await page.goto(base + "/console/addresses");
      await page.click("button:text('Allocate Elastic IP address')");
      await page.waitForSelector("#instances, table.grid td.ip");
      const eip = (await page.locator("table.grid td.ip").first().textContent()).trim();
      assert(/^\d+\.\d+\.\d+\.\d+$/.test(eip), `allocated ${eip}`);
      await page.locator("form.inline select[name=instance_id]").first().selectOption(instanceId);
      await page.click("button:text('Associate')");
      await page.waitForSelector(".flash.ok");
      await page.goto(`${base}/console/instances/${instanceId}?tab=networking`);
      assert((await page.textContent("#public-ip")).trim() === eip, "the instance shows the Elastic IP");
      await snap(page, "networking");
      await page.goto(base + "/console/addresses");
      await snap(page, "elastic-ips");
      await page.click("button:text('Disassociate')");
      await page.waitForSelector("button:text('Associate')");
      await page.click("button:text('Release')");
      await page.click("dialog.confirm button.danger");
      await page.waitForSelector("text=No Elastic IP addresses.");
    });

    await step(page, "create an image from the instance, then deregister it", async () => {
      await page.goto(`${base}/console/instances/${instanceId}`);
      await page.click("button:text('Create image')");
      await page.fill("#image-name", "console-web-image");
      await page.check('#image-dialog input[name="no_reboot"]');
      await page.click("#image-dialog button[type=submit]");
      await page.waitForSelector(".flash.ok");
      const ami = /ami-[0-9a-f]{17}/.exec(await page.textContent(".flash.ok"))[0];
      const row = () => page.locator(`#main tr:has(code:text-is("${ami}"))`);
      await waitFor(async () => {
        await page.goto(base + "/console/images");
        return (await row().locator(".badge").textContent()).includes("available");
      }, 120000, "the new image to be available", 1000);
      await snap(page, "images");
      await row().locator("button:text('Deregister')").click();
      await page.click("dialog.confirm button.danger");
      await page.waitForFunction((ami) => !document.body.innerHTML.includes(ami) && document.readyState === "complete",
        ami, { timeout: 30000 });
    });

    await step(page, "the dashboard and resource pages", async () => {
      await page.goto(base + "/console");
      assert((await page.textContent("#counts .tile .n")).trim() === "1", "one running instance");
      await snap(page, "dashboard");
      await page.goto(base + "/console/instances");
      await snap(page, "instances");
      await page.setViewportSize({ width: 390, height: 844 });
      await sleep(400);
      await snap(page, "instances-phone");
      await page.setViewportSize({ width: 1360, height: 900 });
      for (const p of ["key-pairs", "security-groups", "images?show=all", "volumes", "snapshots", "billing"]) {
        await page.goto(`${base}/console/${p}`);
        assert((await page.locator(".alert.err").count()) === 0, `${p} shows an error`);
        await snap(page, p.replace(/\?.*/, ""));
      }
    });

    // A second account, signed in with a console password, watching its own instances page
    // while the first account's instance changes state.
    server.cli(["account", "create", "bob"]);
    server.cli(["account", "passwd", "bob", "--password-stdin"], "bob-secret-pw\n");
    const bobCtx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const bob = await bobCtx.newPage();
    await step(bob, "a second account sees none of it", async () => {
      await signIn(bob, base, { account: "bob", password: "bob-secret-pw" });
      await bob.goto(base + "/console/instances");
      assert((await bob.locator("#instances tr[data-id]").count()) === 0, "bob sees no instances");
      await bob.goto(`${base}/console/instances/${instanceId}`);
      assert((await bob.textContent(".alert.err")).includes("InvalidInstanceID.NotFound"), "alice's instance is unknown to bob");
      await bob.goto(base + "/console/key-pairs");
      assert((await bob.locator("text=console-demo").count()) === 0, "bob sees no key pair of alice");
      await bob.goto(base + "/console/security-groups");
      assert((await bob.locator("text=launch-wizard-1").count()) === 0, "bob sees no group of alice");
      await bob.goto(base + "/console/instances");
    });

    await step(page, "the bill shows the instance's usage", async () => {
      await page.goto(base + "/console/billing");
      const text = await page.textContent("table.grid");
      assert(/t2\.micro/.test(text), `a t2.micro line: ${text}`);
      assert(/\$\d+\.\d\d/.test(await page.textContent(".tile .n")), "a total");
    });

    await step(page, "stop, start and terminate from the instances page", async () => {
      await page.goto(base + "/console/instances");
      const box = page.locator(`#instances tr[data-id="${instanceId}"] input[name=id]`);
      const posted = () => page.waitForResponse((r) => r.url().endsWith("/console/instances/action"));
      await box.check();
      await Promise.all([posted(), page.click("#instance-actions button[value=stop]")]);
      await waitLiveState(page, instanceId, "stopped", 90000);
      await box.check();
      await Promise.all([posted(), page.click("#instance-actions button[value=start]")]);
      await waitLiveState(page, instanceId, "running", 90000);
      await box.check();
      await page.click("#instance-actions button[value=terminate]");
      await Promise.all([posted(), page.click("dialog.confirm button.danger")]);
      await waitLiveState(page, instanceId, "terminated", 90000);
      // Bob's open page never showed any of it.
      assert((await bob.locator("#instances tr[data-id]").count()) === 0, "bob's live page stayed empty");
    });

    await step(bob, "signing out ends the session", async () => {
      await bob.click("text=Sign out");
      await bob.waitForURL(/\/console\/signin/);
      const r = await bob.request.get(base + "/console/instances", { maxRedirects: 0, headers: { Accept: "text/html" } });
      assert(r.status() === 303, `after sign-out: ${r.status()}`);
    });
    await bobCtx.close();
    assert(errors.length === 0, `script errors on the pages: ${errors.join("; ")}`);
  } catch (e) {
    failed = true;
  } finally {
    await cleanup(page, base, instanceId).catch((e) => console.log(`cleanup: ${e}`));
    await browser.close().catch(() => {});
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const ok = results.filter((r) => r.ok).length;
  console.log(`\n${ok}/${results.length} steps passed; screenshots and the server log in ${ART}`);
  return failed || results.some((r) => !r.ok) ? 1 : 0;
}

/// Terminate every instance the journey launched and wait until the host let them go; then
/// delete the snapshots and volumes a failed step left.
async function cleanup(page, base, instanceId) {
  if (page.isClosed()) return;
  const post = async (path, pairs) => {
    const token = await csrfOf(page);
    const form = new URLSearchParams([["_csrf", token], ...pairs]);
    await page.request.post(base + path, {
      data: form.toString(), headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
  };
  const ids = (table, keep = null) => page.locator(`${table} tr[data-id]`).evaluateAll(
    (rows, keep) => rows.filter((r) => !keep || r.dataset.state !== keep).map((r) => r.dataset.id), keep);
  if (instanceId) {
    await page.goto(base + "/console/instances");
    const live = await ids("#instances", "terminated");
    if (live.length > 0) {
      await post("/console/instances/action", [["action", "terminate"], ...live.map((id) => ["id", id])]);
      await waitFor(async () => {
        await page.goto(base + "/console/instances");
        return (await ids("#instances", "terminated")).length === 0;
      }, 90000, "the instances to terminate", 1000);
    }
  }
  await page.goto(base + "/console/snapshots");
  for (const id of await ids("#snapshots")) await post("/console/snapshots/action", [["action", "delete"], ["snapshot_id", id]]);
  await page.goto(base + "/console/volumes");
  const volumes = await ids("#volumes");
  if (volumes.length === 0) return;
  console.log(`cleanup: deleting ${volumes.join(", ")}`);
  await waitFor(async () => {
    await page.goto(base + "/console/volumes");
    for (const id of await ids("#volumes", "deleting")) {
      await post("/console/volumes/action", [["action", "force-detach"], ["volume_id", id]]);
      await post("/console/volumes/action", [["action", "delete"], ["volume_id", id]]);
    }
    return (await ids("#volumes")).length === 0;
  }, 60000, "the volumes to go", 1000);
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
