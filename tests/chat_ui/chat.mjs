// Drives Agent Chat UI as a user would, in the system Chromium (tests/test_agent_chat_ui.py runs it):
// connect through the setup form, upload a photo, ask, wait for the answer, ask a follow-up, wait,
// take a screenshot. Writes what the page showed after each turn to `report` (JSON); the test asserts on it.
//
//   node chat.mjs '{"ui": URL, "api": URL, "assistant": ID, "photo": PATH, "screenshot": PATH, "report": PATH,
//                   "turns": [{"question": TEXT, "answer": TEXT}, ...], "chromium": PATH, "timeout_ms": N}'
//
// "answer" is the text to wait for (what the scripted VLM says); what the page shows is reported either way.
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const settings = JSON.parse(process.argv[2]);
const timeout = settings.timeout_ms ?? 120000;

// The conversation as the page shows it: each message bubble in order, the text in it a user can see (not the
// labels of the copy/edit buttons, transparent until hovered, nor screen-reader-only text) and its images.
async function transcript(page) {
  return page.$$eval("div.group.ml-auto, div.group.mr-auto", (nodes) =>
    nodes.map((node) => {
      const texts = [];
      const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
      for (let text = walker.nextNode(); text; text = walker.nextNode()) {
        const element = text.parentElement;
        const box = element.getBoundingClientRect();
        const shown = element.checkVisibility({ opacityProperty: true, visibilityProperty: true });
        if (shown && box.width > 1 && box.height > 1) texts.push(text.textContent);
      }
      return {
        role: node.classList.contains("ml-auto") ? "human" : "ai",
        text: texts.join(" ").replace(/\s+/g, " ").trim(),
        images: [...node.querySelectorAll("img")].map((img) => img.getAttribute("src")),
      };
    }),
  );
}

async function toasts(page) {
  return page.$$eval("[data-sonner-toast]", (nodes) => nodes.map((n) => n.innerText.trim()));
}

const browser = await chromium.launch({
  executablePath: settings.chromium,
  headless: true,
  args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
});
const report = { turns: [], console_errors: [] };
let page;
try {
  page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  page.setDefaultTimeout(timeout);
  page.on("console", (message) => {
    if (message.type() === "error") report.console_errors.push(message.text().slice(0, 300));
  });
  await page.goto(settings.ui);

  // The setup form (no NEXT_PUBLIC_* settings were built in): the server's URL and the graph's name.
  await page.fill("#apiUrl", settings.api);
  await page.fill("#assistantId", settings.assistant);
  await page.getByRole("button", { name: "Continue" }).click();
  const box = page.getByPlaceholder("Type your message...");
  await box.waitFor();

  for (const [index, turn] of settings.turns.entries()) {
    if (index === 0) {
      await page.setInputFiles("#file-input", settings.photo);
      await page.locator("form img").first().waitFor(); // the photo's preview above the text box
    }
    await box.fill(turn.question);
    await page.getByRole("button", { name: "Send" }).click();
    // the answer, or an error notice (the UI shows a failed run as one): fail at once with what it says
    const answered = page.locator("div.group.mr-auto", { hasText: turn.answer });
    await answered.or(page.locator("[data-sonner-toast]")).first().waitFor();
    if (!(await answered.count())) throw new Error(`an error notice instead of the answer: ${await toasts(page)}`);
    await page.getByRole("button", { name: "Send" }).waitFor(); // the run is over (Cancel is gone)
    report.turns.push({ transcript: await transcript(page), toasts: await toasts(page) });
  }
  report.url = page.url();
  await page.mouse.move(0, 0);
  await page.screenshot({ path: settings.screenshot });
} catch (error) {
  report.error = String(error).split("\n")[0];
  if (page) {
    report.transcript = await transcript(page).catch(() => null);
    report.toasts = await toasts(page).catch(() => null);
    await page.screenshot({ path: settings.screenshot }).catch(() => {});
  }
} finally {
  await browser.close();
}
writeFileSync(settings.report, JSON.stringify(report, null, 1));
process.exitCode = report.error ? 1 : 0;
