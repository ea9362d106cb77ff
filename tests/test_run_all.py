from bot.run_all import commands
from bot.settings import Settings


def test_rasa_is_private_and_token_protected():
    cmds = dict(commands(Settings(rasa_url="http://127.0.0.1:5105", rasa_token="t0k")))
    rasa = cmds["rasa"]
    assert rasa[rasa.index("-i") + 1] == "127.0.0.1" and rasa[rasa.index("-p") + 1] == "5105"
    assert rasa[rasa.index("--auth-token") + 1] == "t0k" and "--enable-api" in rasa
    assert cmds["gateway"][-2:] == ["bot", "serve"]
    assert cmds["actions"][1:3] == ["run", "actions"]
