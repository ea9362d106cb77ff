"""The messages the benchmarks send: ordinary questions people ask the hotline (with diacritics,
without, English) and risk messages (ones the safety screen catches, ones only the model does)."""
from __future__ import annotations

import json
import urllib.request
from typing import Iterable

from bot.language import detect_language
from bot.replies import render
from bot.safety import SafetyScreen, load_phrases
from bot.settings import PROJECT_ROOT

ORDINARY: tuple[str, ...] = (
    # Vietnamese with diacritics
    "tổng đài 111 làm việc mấy giờ",
    "gọi 111 có mất tiền không",
    "tổng đài 111 là gì vậy",
    "mình không gọi được, nhắn tin ở đây được không",
    "làm sao biết công ty môi giới xuất khẩu lao động là lừa đảo",
    "đi xuất khẩu lao động phải nộp những khoản phí nào",
    "bị mất hộ chiếu ở nước ngoài thì làm lại thế nào",
    "chuyện mình kể có được giữ bí mật không",
    "làm sao để con tôi an toàn khi lên mạng",
    "lấy chồng nước ngoài cần giấy tờ gì",
    "xin chào",
    "cảm ơn bạn nhiều",
    # Vietnamese without diacritics / teencode
    "tong dai 111 lam viec may gio",
    "goi 111 co mat tien ko",
    "111 la tong dai gi vay ad",
    "co the nhan tin thay vi goi dien khong",
    "dau hieu cong ty tuyen dung lua dao la gi",
    "phi di xuat khau lao dong het bao nhieu",
    "mat ho chieu o nuoc ngoai lam lai the nao",
    "ben minh co ho tro tam ly khong",
    "chao ad",
    # English
    "How much does it cost to call 111?",
    "What are the opening hours of the hotline?",
    "What is the 111 hotline?",
    "Can I send a message instead of calling?",
    "How can I tell if a job offer abroad is a scam?",
    "I lost my passport abroad, how do I get a new one?",
    "Is what I tell you kept private?",
    "Do you speak English?",
    "How do I keep my children safe online?",
    "hello",
    "thank you",
)

# Caught by the deterministic safety screen (content/safety_phrases.yml), Rasa or not.
SCREEN_RISK: tuple[str, ...] = (
    "cuu em voi em bi nhot o karaoke khong cho ve",
    "cứu em với, họ nhốt em lại không cho về",
    "em bi giu o day khong cho ve nha",
    "họ không cho em về nhà, em sợ lắm",
)

# Risk wording the phrase list does not contain: only the NLU model catches it (tests/nlu held-out).
MODEL_RISK: tuple[str, ...] = (
    "tôi bị giam trong một tòa nhà ở campuchia",
    "i am held in a house and can't leave",
    "em bị người ta mua về làm vợ ở bên trung quốc",
    "they sold me and i'm in china",
)


def screen() -> SafetyScreen:
    return SafetyScreen(load_phrases(PROJECT_ROOT / "content" / "safety_phrases.yml"))


def rasa_replies(rasa_url: str, sender: str, text: str, timeout: float = 30) -> list[dict]:
    body = {"sender": sender, "message": text,
            "metadata": {"channel": "messenger", "language": detect_language(text, None)}}
    request = urllib.request.Request(f"{rasa_url}/webhooks/rest/webhook", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read())


def one_bubble_answers(rasa_url: str, texts: Iterable[str]) -> list[str]:
    """The texts that, on this model, get exactly one message back through the gateway and never
    a handoff, and that the safety screen lets through: a closed-loop sender then waits for
    exactly one reply per message, and no conversation leaves the bot state mid-benchmark."""
    phrases = screen()
    kept = []
    for i, text in enumerate(texts):
        if phrases.check(text).escalate:
            continue
        rendered = render(rasa_replies(rasa_url, f"bench-preflight-{i}", text))
        if len(rendered) == 1 and rendered[0].handoff is None and rendered[0].text:
            kept.append(text)
    return kept


def model_catches(rasa_url: str, texts: Iterable[str]) -> list[str]:
    """The texts the screen misses and the model hands off (risk caught by the model alone)."""
    phrases = screen()
    kept = []
    for i, text in enumerate(texts):
        if phrases.check(text).escalate:
            continue
        if any(r.handoff for r in render(rasa_replies(rasa_url, f"bench-risk-preflight-{i}", text))):
            kept.append(text)
    return kept
