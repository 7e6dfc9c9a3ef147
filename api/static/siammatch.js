// siammatch web page: sends the form to the JSON API and draws the result on a canvas.
// Masks arrive as COCO RLE (compressed string counts, column-major); decodeRle() turns them
// into row-major 0/1 arrays. No libraries: the service must work with nothing reachable.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let sceneImage = null; // HTMLImageElement of the chosen scene

  // -- COCO RLE ------------------------------------------------------------------------

  // The run lengths of a compressed COCO RLE string (pycocotools' rleFrString).
  function rleCounts(text) {
    const counts = [];
    let p = 0;
    while (p < text.length) {
      let x = 0;
      let k = 0;
      let more = 1;
      while (more) {
        const c = text.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = c & 0x20;
        p += 1;
        k += 1;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    return counts;
  }

  // {size: [h, w], counts} -> {height, width, data: Uint8Array(h*w) row-major 0/1}.
  function decodeRle(rle) {
    const [height, width] = rle.size;
    const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
    const data = new Uint8Array(height * width);
    let pos = 0;
    let value = 0;
    for (const run of counts) {
      if (value) {
        for (let i = pos; i < pos + run; i += 1) {
          const x = Math.floor(i / height);
          data[(i - x * height) * width + x] = 1;
        }
      }
      pos += run;
      value ^= 1;
    }
    return { height, width, data };
  }

  // -- drawing -------------------------------------------------------------------------

  // A distinct colour per index: golden-angle hues, as api/render.py's palette().
  function palette(index) {
    const h = ((index * 0.618033988749895) % 1) * 6;
    const s = 0.85;
    const f = h - Math.floor(h);
    const p = 1 - s;
    const q = 1 - s * f;
    const t = 1 - s * (1 - f);
    const rgb = [[1, t, p], [q, 1, p], [p, 1, t], [p, q, 1], [t, p, 1], [1, p, q]][
      Math.floor(h) % 6
    ];
    return rgb.map((v) => Math.round(v * 255));
  }

  // Draw the scene and items [{instance, label}] (instance as the API returns it).
  function draw(image, items) {
    const canvas = $("canvas");
    const ctx = canvas.getContext("2d");
    const width = image.naturalWidth;
    const height = image.naturalHeight;
    canvas.width = width;
    canvas.height = height;
    ctx.drawImage(image, 0, 0);
    const masks = items.filter((it) => it.instance.mask);
    if (masks.length) {
      const overlay = ctx.createImageData(width, height);
      masks.forEach((it) => {
        const mask = decodeRle(it.instance.mask);
        if (mask.width !== width || mask.height !== height) return;
        const [r, g, b] = palette(it.color);
        for (let i = 0; i < mask.data.length; i += 1) {
          if (mask.data[i]) {
            overlay.data[4 * i] = r;
            overlay.data[4 * i + 1] = g;
            overlay.data[4 * i + 2] = b;
            overlay.data[4 * i + 3] = 115;
          }
        }
      });
      const layer = document.createElement("canvas");
      layer.width = width;
      layer.height = height;
      layer.getContext("2d").putImageData(overlay, 0, 0);
      ctx.drawImage(layer, 0, 0);
    }
    const line = Math.max(2, Math.round(Math.min(width, height) / 250));
    const fontSize = Math.max(12, Math.round(Math.min(width, height) / 28));
    ctx.font = `600 ${fontSize}px sans-serif`;
    ctx.textBaseline = "bottom";
    items.forEach((it) => {
      const [r, g, b] = palette(it.color);
      const colour = `rgb(${r}, ${g}, ${b})`;
      const [x0, y0, x1, y1] = it.instance.box;
      ctx.lineWidth = line;
      ctx.strokeStyle = colour;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      const poly = it.instance.polygon;
      if (poly && poly.length > 2) {
        ctx.beginPath();
        ctx.moveTo(poly[0][0], poly[0][1]);
        poly.slice(1).forEach(([x, y]) => ctx.lineTo(x, y));
        ctx.closePath();
        ctx.lineWidth = Math.max(1, line - 1);
        ctx.stroke();
      }
      const textWidth = ctx.measureText(it.label).width + 8;
      const top = y0 - fontSize - 4 >= 0 ? y0 - fontSize - 4 : Math.min(height - fontSize - 4, y1);
      ctx.fillStyle = colour;
      ctx.fillRect(x0, top, textWidth, fontSize + 4);
      ctx.fillStyle = "#000";
      ctx.fillText(it.label, x0 + 4, top + fontSize + 2);
    });
  }

  function showTable(items) {
    const body = $("instances").querySelector("tbody");
    body.replaceChildren();
    items.forEach((it, i) => {
      const row = document.createElement("tr");
      const [r, g, b] = palette(it.color);
      const maskPixels = it.instance.mask
        ? decodeRle(it.instance.mask).data.reduce((a, v) => a + v, 0)
        : "";
      const cells = [
        i + 1,
        it.name,
        it.instance.score.toFixed(3),
        it.instance.box.map((v) => v.toFixed(1)).join(", "),
        maskPixels,
      ];
      cells.forEach((value, column) => {
        const cell = document.createElement("td");
        if (column === 1) {
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.background = `rgb(${r}, ${g}, ${b})`;
          cell.append(swatch);
        }
        cell.append(String(value));
        row.append(cell);
      });
      body.append(row);
    });
  }

  function setStatus(state, text, count) {
    const status = $("status");
    status.dataset.state = state;
    status.dataset.count = count === undefined ? "" : String(count);
    status.textContent = text;
  }

  // -- requests ------------------------------------------------------------------------

  function authHeaders() {
    const key = $("api-key");
    return key && key.value ? { "X-API-Key": key.value } : {};
  }

  async function callApi(url, options) {
    const response = await fetch(url, {
      ...options,
      headers: { ...authHeaders(), ...((options && options.headers) || {}) },
    });
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await response.json() : null;
    if (!response.ok) {
      const message = body && body.error ? `${body.error.code}: ${body.error.message}` : "";
      throw new Error(message || `HTTP ${response.status}`);
    }
    return body;
  }

  async function loadImage(source) {
    const image = new Image();
    image.src = typeof source === "string" ? source : URL.createObjectURL(source);
    await image.decode();
    return image;
  }

  function busy(flag) {
    document.querySelectorAll("button").forEach((b) => { b.disabled = flag; });
  }

  async function runMatch(event) {
    event.preventDefault();
    const scene = $("scene-file").files[0];
    const reference = $("reference-file").files[0];
    const catalogSelect = $("catalog-select");
    const referenceId = catalogSelect ? catalogSelect.value : "";
    if (!scene || (!reference && !referenceId)) {
      setStatus("error", "Choose a reference (photo or catalog product) and a scene.");
      return;
    }
    const form = new FormData();
    if (referenceId) {
      form.append("reference_id", referenceId);
    } else {
      form.append("reference", reference);
      if ($("reference-box").value.trim()) form.append("reference_box", $("reference-box").value);
    }
    form.append("scene", scene);
    form.append("recipe", $("recipe").value);
    if ($("threshold").value) form.append("threshold", $("threshold").value);
    if ($("max-instances").value) form.append("max_instances", $("max-instances").value);
    busy(true);
    setStatus("busy", "Matching…");
    try {
      const [result, image] = await Promise.all([
        callApi("/v1/match", { method: "POST", body: form }),
        loadImage(scene),
      ]);
      sceneImage = image;
      const items = result.instances.map((instance, i) => ({
        instance, color: i, name: result.reference_id || "reference",
        label: instance.score.toFixed(2),
      }));
      draw(image, items);
      showTable(items);
      const n = items.length;
      setStatus(
        "done",
        `${n} instance${n === 1 ? "" : "s"} found (${result.recipe}, ${result.elapsed_ms} ms)`,
        n,
      );
    } catch (err) {
      setStatus("error", err.message);
    } finally {
      busy(false);
    }
  }

  async function runSearch() {
    const scene = $("scene-file").files[0];
    if (!scene) {
      setStatus("error", "Choose a scene to search.");
      return;
    }
    const form = new FormData();
    form.append("scene", scene);
    form.append("k", "5");
    if ($("threshold").value) form.append("threshold", $("threshold").value);
    busy(true);
    setStatus("busy", "Searching the catalog…");
    try {
      const [result, image] = await Promise.all([
        callApi("/v1/search", { method: "POST", body: form }),
        loadImage(scene),
      ]);
      sceneImage = image;
      const items = [];
      result.results.forEach((hit, h) => {
        hit.instances.forEach((instance) => {
          items.push({
            instance, color: h, name: hit.product_id,
            label: `${hit.product_id} ${instance.score.toFixed(2)}`,
          });
        });
      });
      draw(image, items);
      showTable(items);
      const n = result.results.length;
      setStatus("done", `${n} product${n === 1 ? "" : "s"} found (${result.elapsed_ms} ms)`, n);
    } catch (err) {
      setStatus("error", err.message);
    } finally {
      busy(false);
    }
  }

  async function loadCatalog() {
    const select = $("catalog-select");
    if (!select) return;
    while (select.options.length > 1) select.remove(1);
    let cursor = "";
    try {
      for (let page = 0; page < 5; page += 1) {
        const query = cursor ? `?limit=200&cursor=${encodeURIComponent(cursor)}` : "?limit=200";
        const result = await callApi(`/v1/catalog${query}`);
        result.products.forEach((product) => {
          const option = document.createElement("option");
          option.value = product.product_id;
          const name = product.metadata && product.metadata.name;
          option.textContent = name ? `${product.product_id} — ${name}` : product.product_id;
          select.append(option);
        });
        if (!result.next_cursor) break;
        cursor = result.next_cursor;
      }
    } catch (err) {
      select.title = `catalog unavailable: ${err.message}`;
    }
  }

  async function previewCatalogProduct() {
    const id = $("catalog-select").value;
    const preview = $("reference-preview");
    if (!id) {
      preview.hidden = true;
      return;
    }
    const response = await fetch(`/v1/catalog/${encodeURIComponent(id)}/image`, {
      headers: authHeaders(),
    });
    if (response.ok) {
      preview.src = URL.createObjectURL(await response.blob());
      preview.hidden = false;
    }
  }

  function previewFile() {
    const file = $("reference-file").files[0];
    const preview = $("reference-preview");
    if (file) {
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
      const select = $("catalog-select");
      if (select) select.value = "";
    }
  }

  async function previewScene() {
    const file = $("scene-file").files[0];
    if (!file) return;
    sceneImage = await loadImage(file);
    draw(sceneImage, []);
  }

  $("match-form").addEventListener("submit", runMatch);
  $("reference-file").addEventListener("change", previewFile);
  $("scene-file").addEventListener("change", previewScene);
  if ($("search-button")) $("search-button").addEventListener("click", runSearch);
  if ($("catalog-select")) {
    $("catalog-select").addEventListener("change", previewCatalogProduct);
    loadCatalog();
  }
  if ($("api-key")) {
    $("api-key").value = sessionStorage.getItem("siammatch-api-key") || "";
    $("api-key").addEventListener("change", () => {
      sessionStorage.setItem("siammatch-api-key", $("api-key").value);
      loadCatalog();
    });
  }

  // For tests and the console.
  window.siammatch = { decodeRle, rleCounts, palette, draw };
})();
