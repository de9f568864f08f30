"""The real vLLM (CPU build) server, serving SmolLM2-135M through its OpenAI API."""

import openai


async def test_vllm_streams_a_reply(services, settings):
    client = openai.AsyncOpenAI(base_url=f"{settings.llm.url}/v1", api_key="x")
    stream = await client.chat.completions.create(
        model=settings.llm.served_model_name,
        messages=[
            {"role": "system", "content": settings.llm.system_prompt},
            {"role": "user", "content": "Hello, what can you do for me?"},
        ],
        max_tokens=30,
        temperature=0,
        stream=True,
    )
    deltas = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    await client.close()
    assert len(deltas) > 3  # streamed token by token, not one blob
    assert any(ch.isalpha() for ch in "".join(deltas))
