"""Previews by media type, without widgets: what the bytes are (magic numbers first, the declared
type only where the bytes agree), what each kind shows (media as data: sources, JSON pretty-printed
and collapsed when large, text wrapped, tables, hex), how little is read, and that nothing from an
output is ever markup. Then ``inv.show()`` and ``batch.show()`` as mime bundles over moto."""

from __future__ import annotations

import base64
import json
import re

import mediakit
import pytest
from panelkit import complete, fail, pending

from sm_async_nb.display import previews, shown
from sm_async_nb.display.previews import HEAD_BYTES, MEDIA_LIMIT, build, classify, load
from sm_async_nb.errors import ValidationError
from sm_async_nb.payloads.sniffing import image_size, sniff, wav_seconds
from sm_async_nb.records import BatchKind, BatchRecord

MARKUP = re.compile(r"<(script|svg|iframe|object|embed)\b", re.I)


def data_of(html: str, media_type: str) -> bytes:
    """The bytes of the first data: URI of ``media_type`` in ``html``."""
    found = re.search(rf'src="data:{re.escape(media_type)};base64,([A-Za-z0-9+/=]+)"', html)
    assert found, f"no data:{media_type} source in {html[:300]}"
    return base64.b64decode(found.group(1))


# --- what the bytes are -------------------------------------------------------------------------

@pytest.mark.parametrize(("make", "media", "size"), [
    (lambda: mediakit.png(32, 24), "image/png", (32, 24)),
    (lambda: mediakit.pillow("JPEG", 20, 10), "image/jpeg", (20, 10)),
    (lambda: mediakit.pillow("GIF", 20, 10), "image/gif", (20, 10)),
    (lambda: mediakit.pillow("WEBP", 20, 10), "image/webp", (20, 10)),
])
def test_images_are_known_by_their_bytes_and_their_header_gives_the_size(make, media, size):
    body = make()
    assert sniff(body) == media and image_size(body, media) == size
    preview = build(body, "application/octet-stream", len(body))
    assert preview.kind == "image" and preview.media.media_type == media and preview.media.data == body
    assert f"{size[0]}×{size[1]}" in preview.caption
    assert data_of(preview.to_html(), media) == body and "<img " in preview.to_html()


@pytest.mark.parametrize(("body", "declared", "kind", "media"), [
    (mediakit.MP4, None, "video", "video/mp4"),
    (mediakit.M4A, None, "audio", "audio/mp4"),
    (mediakit.MP4, "audio/mp4", "audio", "audio/mp4"),      # the same container: the declared family decides
    (mediakit.WEBM, "video/webm", "video", "video/webm"),
    (mediakit.OGG, None, "audio", "audio/ogg"),
    (mediakit.OGG, "video/ogg", "video", "video/ogg"),
    (mediakit.MP3, "audio/mpeg", "audio", "audio/mpeg"),
    (mediakit.FLAC, None, "audio", "audio/flac"),
])
def test_audio_and_video_are_known_by_their_bytes(body, declared, kind, media):
    found = classify(body, declared)
    assert (found.kind, found.media, found.doubt) == (kind, media, "")
    preview = build(body, declared, len(body))
    tag = {"audio": "<audio ", "video": "<video "}[kind]
    html = preview.to_html()
    assert tag in html and " controls" in html and "autoplay" not in html and data_of(html, media) == body


def test_a_wav_says_how_long_it_plays():
    body = mediakit.wav(0.25)
    assert wav_seconds(body) == pytest.approx(0.25)
    preview = build(body, "audio/x-wav", len(body))  # an alias of audio/wav: no doubt
    assert preview.kind == "audio" and preview.caption.startswith("WAV audio · 0.25 s") and not preview.html.count(
        "Not shown as declared")


def test_declared_types_the_bytes_contradict_are_not_believed():
    png = mediakit.png()
    as_csv = build(png, "text/csv", len(png))
    assert as_csv.kind == "image" and "declared text/csv, but the bytes are PNG image" in as_csv.html
    html = b"<html><body><script>alert(1)</script></body></html>"
    as_png = build(html, "image/png", len(html))
    assert as_png.kind == "text" and as_png.media is None
    assert "declared image/png, but the bytes are not PNG image" in as_png.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in as_png.html and not MARKUP.search(as_png.html)
    junk = bytes(range(256))
    as_wav = build(junk, "audio/wav", 256)
    assert as_wav.kind == "binary" and "declared audio/wav, but the bytes are not WAV audio" in as_wav.html
    as_html = build(html, "text/html", len(html))
    assert as_html.kind == "text" and not MARKUP.search(as_html.html)


def test_svg_is_an_image_source_or_text_never_markup():
    svg = mediakit.SVG
    preview = build(svg, "image/svg+xml", len(svg))
    assert preview.kind == "image" and preview.media.format == "svg+xml"
    html = preview.to_html()
    assert data_of(html, "image/svg+xml") == svg and not MARKUP.search(html)
    assert html.count("<img ") == 1
    sniffed = build(svg, None, len(svg))  # no declared type: the bytes say SVG, shown as an image
    assert sniffed.kind == "image" and not MARKUP.search(sniffed.to_html())
    declared_text = build(svg, "text/plain", len(svg))  # declared as text: its text, escaped
    assert declared_text.kind == "text" and "&lt;script&gt;window.__svg_xss=1" in declared_text.html
    assert not MARKUP.search(declared_text.to_html())


# --- documents, text, tables, bytes -------------------------------------------------------------

def test_json_is_pretty_printed_and_a_script_in_it_stays_text():
    body = json.dumps({"caption": "<script>alert(1)</script>", "score": 0.5}).encode()
    preview = build(body, "application/json", len(body))
    assert preview.kind == "json" and '&quot;caption&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;' \
        in preview.html
    assert not MARKUP.search(preview.to_html()) and "<details" not in preview.html  # small: open
    string = json.dumps("<script>alert(2)</script>").encode()  # a JSON document that is one string
    assert not MARKUP.search(build(string, "application/json", len(string)).to_html())


def test_large_json_documents_start_collapsed_and_are_bounded():
    body = json.dumps({"items": [{"i": i, "text": "x" * 50} for i in range(2000)]}).encode()
    preview = build(body, "application/json", len(body))
    assert '<details class="sm-async-json-doc">' in preview.html and "(click to expand)" in preview.html
    assert "first 20,000 characters" in preview.html and len(preview.html) < 40_000


def test_json_records_show_as_a_table_with_the_document_collapsed():
    body = json.dumps({"predictions": [{"label": "setosa", "p": 0.9}, {"label": "<b>", "p": 0.1}]}).encode()
    preview = build(body, "application/json", len(body))
    assert "<td>setosa</td>" in preview.html and "<td>&lt;b&gt;</td>" in preview.html
    assert "<details" in preview.html  # the document under the table, collapsed


def test_text_is_wrapped_and_escaped():
    body = ("word " * 2000).encode() + b"<b>bold</b>"
    preview = build(body, "text/plain; charset=utf-8", len(body))
    assert "white-space:pre-wrap" in preview.html and "overflow-wrap:anywhere" in preview.html
    assert "first 2,048 bytes of 9.8 KB" in preview.html


def test_anything_else_is_its_size_and_first_bytes_in_hex():
    body = b"\x00\x01\x02<script>" + bytes(range(200))
    preview = build(body, "application/x-thing", 5000)
    assert preview.kind == "binary" and "binary, 5,000 bytes (application/x-thing)" in preview.html
    assert "00000000  00 01 02 3c 73 63 72 69 70 74 3e" in preview.html and "...&lt;script&gt;" in preview.html
    assert "first 64 bytes" in preview.html and not MARKUP.search(preview.html)


# --- how much is read ---------------------------------------------------------------------------

class Source:
    """An output in memory that answers ranged reads, recording the limits asked for."""

    def __init__(self, body: bytes, content_type: str | None):
        self.body, self.content_type, self.asked = body, content_type, []

    def __call__(self, limit: int):
        self.asked.append(limit)
        return self.body[:limit], self.content_type, len(self.body)


def test_small_media_are_read_whole_in_a_second_ranged_read():
    body = mediakit.png(300, 300)
    body += b"\x00" * (HEAD_BYTES + 10 - len(body))  # past the first read: a second one is needed
    source = Source(body, "image/png")
    preview = load(source)
    assert source.asked == [HEAD_BYTES, len(body)] and preview.media.data == body


def test_media_over_the_limit_are_described_and_never_read_whole():
    body = mediakit.big_png(5 * 1024 * 1024)
    source = Source(body, "image/png")
    preview = load(source)
    assert source.asked == [HEAD_BYTES] and preview.media is None and preview.kind == "image"
    assert "PNG image · 64×64 · 5.0 MB" in preview.html and "Larger than the 2.0 MB preview limit" in preview.html
    assert "download()" in preview.html and len(preview.to_html()) < 2000


def test_tables_and_text_need_only_the_first_read():
    source = Source(b"1,2\n3,4\n" * 100_000, "text/csv")
    preview = load(source)
    assert source.asked == [HEAD_BYTES] and preview.kind == "table" and "first 10 rows of the output&#x27;s start" \
        in preview.html


def test_media_limit_is_documented_in_the_module():
    assert MEDIA_LIMIT == 2 * 1024 * 1024 and "MEDIA_LIMIT" in previews.__doc__


# --- inv.show() and batch.show() ----------------------------------------------------------------

def test_show_of_an_image_invocation_is_html_with_the_image_and_a_text_form(client, s3):
    [row] = pending(client, 1, label="<b>cat</b>")
    body = mediakit.png(40, 30)
    complete(s3, [row], body=body, content_type="image/png")
    client.tracker.refresh()
    out = client.invocation(row.inference_id).show()
    bundle = out._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"} and out._repr_html_() == bundle["text/html"]
    assert data_of(bundle["text/html"], "image/png") == body and "&lt;b&gt;cat&lt;/b&gt;" in bundle["text/html"]
    assert "<b>cat</b>" not in bundle["text/html"]
    assert bundle["text/plain"].startswith("<b>cat</b>0 · COMPLETED · ep") and "PNG image · 40×30" in repr(out)


def test_show_of_rows_without_an_output_says_why(client, s3):
    rows = pending(client, 2)
    fail(s3, rows[:1], "ModelError: </pre><script>x</script>")
    client.tracker.refresh()
    failed = client.invocation(rows[0].inference_id).show()
    assert ">FAILED<" in failed.html and "&lt;/pre&gt;&lt;script&gt;" in failed.html and not MARKUP.search(failed.html)
    waiting = client.invocation(rows[1].inference_id).show()
    assert ">PENDING<" in waiting.html and "pending for" in waiting.text


def test_batch_show_is_a_gallery_of_its_first_parts_with_labels(client, s3):
    batch = BatchRecord("batch-gallery", "ep", 5, label="pics", kind=BatchKind.S3)
    rows = pending(client, 5, batch=batch, label=None, user_input=True)
    images = [mediakit.png(16 + i, 16, seed=i) for i in range(3)]
    for row, body in zip(rows, images, strict=False):
        complete(s3, [row], body=body, content_type="image/png")
    complete(s3, [rows[3]], body=mediakit.wav(0.1), content_type="audio/wav")
    client.tracker.refresh()
    gallery = client.batch("batch-gallery").show(limit=4)
    html = gallery._repr_mimebundle_()["text/html"]
    assert html.count('class="sm-async-gallery-item"') == 4 and "first 4 of 5 parts" in html
    assert [data_of(cell, "image/png") for cell in html.split("<figure")[1:4]] == images
    assert "<audio " in html and "grid-template-columns" in html
    names = [r.input_location.rsplit("/", 1)[1] for r in rows[:4]]  # the input objects' names label the parts
    assert all(name in html for name in names) and names[0] in gallery.text
    with pytest.raises(ValidationError, match="limit must be a positive integer"):
        client.batch("batch-gallery").show(limit=0)


def test_a_gallery_inlines_media_up_to_its_budget_and_says_so(client, s3, monkeypatch):
    batch = BatchRecord("batch-budget", "ep", 3, label="big")
    rows = pending(client, 3, batch=batch)
    bodies = [mediakit.big_png(30_000) for _ in rows]
    for row, body in zip(rows, bodies, strict=True):
        complete(s3, [row], body=body, content_type="image/png")
    client.tracker.refresh()
    monkeypatch.setattr(shown, "GALLERY_BYTES", 70_000)  # room for two of the three
    gallery = client.batch("batch-budget").show()
    assert gallery.html.count('src="data:image/png') == 2 and "Not inlined: this gallery already holds" in gallery.html
    assert "batch.download(folder) saves every output" in gallery.html
