"""Chapter 02 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 02.merge
exercise_ids = list("banana bandana".encode("utf-8"))
print(exercise_ids)
### BEGIN SOLUTION
# "an" = (97, 110) occurs 4 times (b-an-an-a, b-an-d-an-a); get_stats(exercise_ids) says so too
my_merged = merge(exercise_ids, (97, 110), 256)
### END SOLUTION

# %% 02.bytes_per_token
exercise_text = held_zh[1]
exercise_token_ids = ours.encode(exercise_text)
print(f"{len(exercise_text)} characters: {exercise_text[:40]}...")
### BEGIN SOLUTION
my_bytes_per_token = len(exercise_text.encode("utf-8")) / len(exercise_token_ids)   # bytes, not characters
### END SOLUTION
