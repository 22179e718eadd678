"""Chapter 00 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 00.chat_prompt
exercise_messages = [{"role": "user", "content": "Sort these numbers: 3, 1, 2"}]
### BEGIN SOLUTION
# every turn is <|im_start|>{role}\n{content}<|im_end|>\n; SmolLM2 adds its default system turn
# when the conversation has none; the generation prompt opens the assistant's turn
my_prompt = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
             "<|im_start|>user\nSort these numbers: 3, 1, 2<|im_end|>\n"
             "<|im_start|>assistant\n")
### END SOLUTION
