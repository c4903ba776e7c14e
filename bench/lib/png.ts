/** Turning a benchmark chart (hand-written SVG) into PNG, with the headless Chromium the browser tests use. */

/**
 * Renders `svg` to the PNG file `file` (`/usr/bin/chromium`, or `CHROMIUM_PATH`).
 * @returns `null` when written, else why not (no Chromium here): the caller keeps the SVG alone
 */
export async function svgToPng(svg: string, file: string): Promise<string | null> {
  try {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const width = Number(/width="(\d+)"/.exec(svg)?.[1] ?? 1000);
      const height = Number(/height="(\d+)"/.exec(svg)?.[1] ?? 800);
      const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
      await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
      await page.screenshot({ path: file, clip: { x: 0, y: 0, width, height } });
    } finally {
      await browser.close();
    }
    return null;
  } catch (error) {
    return String((error as Error).message).split('\n')[0];
  }
}
