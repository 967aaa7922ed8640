"""The details view by media type, without a kernel, every widget message recorded with its binary
buffers: an image, audio or video output goes to ipywidgets' own Image/Audio/Video widget as one
binary buffer of its bytes; a 5 MB image sends its description, not its bytes; SVG is an image
source, never markup; JSON and text stay escaped text."""

from __future__ import annotations

import json

import mediakit
from panelkit import complete, pending, slot_of

from sm_async_nb.notebook.panel.state import CACHE_BYTES


def open_details(panel, inference_id):
    slot_of(panel, inference_id).ident.click()
    assert panel.wait_idle()
    return panel.view.details


def completed(client, s3, outputs):
    """One completed row per (body, content type), in order."""
    rows = pending(client, len(outputs))
    for row, (body, content_type) in zip(rows, outputs, strict=True):
        complete(s3, [row], body=body, content_type=content_type)
    client.tracker.refresh()
    return rows


def test_an_image_goes_to_the_image_widget_as_one_binary_buffer(client, make_panel, s3, wire):
    body = mediakit.png(120, 80)
    [row] = completed(client, s3, [(body, "image/png")])
    panel = make_panel()
    mark = wire.mark()
    details = open_details(panel, row.inference_id)
    assert details.image in details.box.children and details.image.value == body and details.image.format == "png"
    assert "PNG image · 120×80" in details.preview.value
    assert wire.buffer_bytes_since(mark) == len(body)  # the bytes once, not base64 in JSON
    assert wire.bytes_since(mark) < 8_000  # the fields, the caption and the widget's traits


def test_a_5_mb_png_sends_its_description_not_its_bytes(client, make_panel, s3, wire):
    body = mediakit.big_png(5 * 1024 * 1024)
    [row] = completed(client, s3, [(body, "image/png")])
    panel = make_panel()
    mark = wire.mark()
    details = open_details(panel, row.inference_id)
    sent = wire.total_bytes_since(mark)
    print(f"\nopening the details of a 5 MB PNG sent {sent:,} bytes to the browser")
    assert sent < 10_000 and wire.buffer_bytes_since(mark) == 0
    assert details.image not in details.box.children and details.image.value == b""
    assert "5.0 MB" in details.preview.value and "Larger than the 2.0 MB preview limit" in details.preview.value


def test_audio_and_video_go_to_their_players_which_never_play_by_themselves(client, make_panel, s3, wire):
    sound, film = mediakit.wav(0.2), mediakit.MP4
    audio_row, video_row = completed(client, s3, [(sound, "audio/wav"), (film, "video/mp4")])
    panel = make_panel()
    details = open_details(panel, audio_row.inference_id)
    assert details.audio in details.box.children and details.audio.value == sound and details.audio.format == "wav"
    assert not details.audio.autoplay and details.audio.controls
    details = open_details(panel, video_row.inference_id)
    assert details.video in details.box.children and details.audio not in details.box.children
    assert details.video.value == film and details.video.format == "mp4" and not details.video.autoplay
    assert details.audio.value == b""  # the audio player let go of its bytes


def test_svg_is_an_image_widget_source_and_never_html(client, make_panel, s3, wire):
    [row] = completed(client, s3, [(mediakit.SVG, "image/svg+xml")])
    panel = make_panel()
    mark = wire.mark()
    details = open_details(panel, row.inference_id)
    assert details.image.format == "svg+xml" and details.image.value == mediakit.SVG
    assert not any("<svg" in v or "<script" in v for v in wire.html_values(mark))


def test_json_and_text_stay_escaped_text(client, make_panel, s3, wire):
    document = json.dumps({"answer": "<script>alert(1)</script>", "tokens": list(range(3))}).encode()
    json_row, text_row = completed(client, s3, [(document, "application/json"),
                                                (b"<img src=x onerror=alert(2)>", "text/html")])
    panel = make_panel()
    mark = wire.mark()
    details = open_details(panel, json_row.inference_id)
    assert "&quot;answer&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in details.preview.value
    details = open_details(panel, text_row.inference_id)
    assert "&lt;img src=x onerror=alert(2)&gt;" in details.preview.value
    assert not any(tag in v for v in wire.html_values(mark) for tag in ("<script", "<img"))
    assert details.image not in details.box.children


def test_previews_are_cached_within_a_byte_budget(client, make_panel, s3):
    calls = []

    body = mediakit.big_png(1024 * 1024)

    def fetch_head(record, limit):
        calls.append(record.inference_id)
        return body[:limit], "image/png", len(body)

    rows = completed(client, s3, [(b"x", "text/plain")] * 20)
    panel = make_panel(fetch_head=fetch_head)
    for row in rows:
        open_details(panel, row.inference_id)
    assert panel.state.previews.bytes <= CACHE_BYTES and len(panel.state.previews) < 20
    open_details(panel, rows[-1].inference_id)  # the newest stayed
    assert calls.count(rows[-1].inference_id) == 2  # a head, then the whole 1 MB (within the limit)
