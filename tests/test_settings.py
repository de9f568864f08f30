import pytest

from configs import SettingsError, load_settings
from latency.budget import DEFAULT_STAGE_BUDGETS_MS


def test_profiles_load_with_their_models():
    cpu = load_settings("cpu")
    gpu = load_settings("gpu-24gb")
    assert cpu.asr.model == "whisper-tiny.en" and cpu.tts.backend == "onnx"
    assert cpu.model_path(cpu.asr.model).endswith("models/whisper-tiny.en")
    assert gpu.asr.compute_type == "int8_float16" and gpu.asr.device == "cuda"
    assert gpu.model_path(gpu.llm.model) == "Qwen/Qwen2.5-7B-Instruct-AWQ"
    assert gpu.llm.quantization and gpu.tts.backend == "torch"


def test_environment_overrides_profile(monkeypatch):
    monkeypatch.setenv("HALFSEC_ASR__PORT", "9123")
    monkeypatch.setenv("HALFSEC_TTS__VOICE", "bf_emma")
    s = load_settings("cpu")
    assert s.asr.port == 9123 and s.tts.voice == "bf_emma"
    assert s.asr.model == "whisper-tiny.en"  # the rest still comes from the profile


def test_bad_value_names_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("HALFSEC_ASR__PORT", raising=False)  # the environment would win over the file
    bad = tmp_path / "bad.yaml"
    bad.write_text("asr:\n  port: seventy\n")
    with pytest.raises(SettingsError) as err:
        load_settings(bad)
    msg = str(err.value)
    assert "asr.port" in msg and "seventy" in msg and "\n" not in msg


def test_bad_env_value_names_key_and_variable(monkeypatch):
    monkeypatch.setenv("HALFSEC_VAD__MIN_SILENCE_S", "-1")
    with pytest.raises(SettingsError, match=r"vad\.min_silence_s.*HALFSEC_VAD__MIN_SILENCE_S"):
        load_settings("cpu")


def test_unknown_key_and_profile_and_yaml(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("tts:\n  voise: af_heart\n")
    with pytest.raises(SettingsError, match=r"tts\.voise: unknown setting"):
        load_settings(typo)
    with pytest.raises(SettingsError, match="unknown profile 'nope'"):
        load_settings("nope")
    broken = tmp_path / "broken.yaml"
    broken.write_text("asr: [1, 2\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(broken)


def test_latency_budgets_default_and_override(monkeypatch):
    s = load_settings("cpu")
    stages, total = s.latency.budget_values()
    # latency/budget.py's defaults (their numbers are pinned in test_latency_budget.py)
    assert stages == dict(DEFAULT_STAGE_BUDGETS_MS) and total == 500
    monkeypatch.setenv("HALFSEC_LATENCY__BUDGET_MS__STT", "20")
    assert load_settings("cpu").latency.budget_values()[0]["stt"] == 20


def test_stage_budgets_over_the_target_are_refused(monkeypatch):
    monkeypatch.setenv("HALFSEC_LATENCY__TARGET_MS", "450")
    with pytest.raises(SettingsError, match=r"latency: .*stage budgets sum to 500 ms, over the 450 ms total"):
        load_settings("cpu")


def test_the_native_bf16_dtype_is_refused_for_vllm_on_a_gpu(monkeypatch):
    monkeypatch.setenv("HALFSEC_LLM__DTYPE", "bfloat16-where-native")
    assert load_settings("cpu").llm.dtype == "bfloat16-where-native"
    with pytest.raises(SettingsError, match=r"llm.*bfloat16-where-native.*not device 'cuda'"):
        load_settings("gpu-24gb")


def test_the_native_bf16_dtype_answers_to_its_old_name(monkeypatch):
    monkeypatch.setenv("HALFSEC_LLM__DTYPE", "bfloat16-on-amx")
    assert load_settings("cpu").llm.dtype == "bfloat16-where-native"


def test_a_hold_on_vllm_must_stay_under_the_first_token_timeout(monkeypatch):
    monkeypatch.setenv("HALFSEC_LLM__HOLD_FOR_FIRST_AUDIO_S", "1.5")
    with pytest.raises(SettingsError, match="hold_for_first_audio_s"):
        load_settings("cpu")  # first_token_timeout_s is 1.5: another call's reply would fail
    monkeypatch.setenv("HALFSEC_LLM__FIRST_TOKEN_TIMEOUT_S", "2.0")
    assert load_settings("cpu").llm.hold_for_first_audio_s == 1.5
