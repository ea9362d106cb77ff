from bot.replies import render


def test_paragraphs_split_by_rasa_are_one_message_again():
    out = render([{"text": "Mình đây."}, {"text": "Tổng đài 111 làm việc 24/7."},
                  {"text": "Bạn muốn hỏi gì?", "buttons": [{"title": "Giờ làm việc", "payload": "/faq_hours"}]},
                  {"text": "Sau nút"}])
    assert [r.text for r in out] == ["Mình đây.\n\nTổng đài 111 làm việc 24/7.\n\nBạn muốn hỏi gì?", "Sau nút"]
    assert out[0].payload == {"quick_replies": [{"title": "Giờ làm việc", "payload": "/faq_hours"}]}


def test_handoff_is_a_signal_not_a_message():
    out = render([{"text": "a"}, {"custom": {"handoff": {"priority": "emergency", "reason": "held"}}}, {"text": "b"},
                  {"custom": {"something": "else"}}, {"image": "http://x"}])
    assert [(r.text, r.handoff) for r in out] == [("a", None), ("", {"priority": "emergency", "reason": "held"}),
                                                  ("b", None)]


def test_quick_reply_limits():
    out = render([{"text": "pick", "buttons": [{"title": "t" * 40, "payload": "p"}] * 20}])
    assert len(out[0].payload["quick_replies"]) == 13
    assert len(out[0].payload["quick_replies"][0]["title"]) == 20
