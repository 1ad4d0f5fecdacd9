/*
 * scoreboard.c - the shared slots (see scoreboard.h).
 *
 * Fields another process reads are written and read with relaxed atomics:
 * each is a single 64-bit value with one writer, so no lock is needed and
 * no reader ever sees a torn value.
 */
#include "scoreboard.h"

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

_Static_assert(sizeof(struct scoreboard_slot) == 128, "whole cache lines per slot");

uint64_t
scoreboard_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t
scoreboard_size(uint32_t nslots)
{
	return offsetof(struct scoreboard, slots) + (size_t)nslots * sizeof(struct scoreboard_slot);
}

struct scoreboard *
scoreboard_create(uint32_t nslots)
{
	struct scoreboard *sb;

	sb = mmap(NULL, scoreboard_size(nslots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sb == MAP_FAILED)
		return NULL;
	sb->nslots = nslots; /* the mapping comes zeroed: every slot is free */
	return sb;
}

void
scoreboard_destroy(struct scoreboard *sb)
{
	if (sb != NULL)
		munmap(sb, scoreboard_size(sb->nslots));
}

int
scoreboard_claim(struct scoreboard *sb, unsigned id, unsigned generation)
{
	for (uint32_t i = 0; i < sb->nslots; i++) {
		struct scoreboard_slot *s = &sb->slots[i];
		if (s->pid != 0 || s->id != 0)
			continue;
		memset(s, 0, sizeof(*s));
		s->id = id;
		s->generation = generation;
		s->started_ms = scoreboard_now_ms();
		__atomic_store_n(&s->heartbeat_ms, s->started_ms, __ATOMIC_RELAXED);
		return (int)i;
	}
	return -1;
}

void
scoreboard_bind(struct scoreboard *sb, int slot, pid_t pid)
{
	__atomic_store_n(&sb->slots[slot].pid, (int32_t)pid, __ATOMIC_RELAXED);
}

void
scoreboard_release(struct scoreboard *sb, int slot)
{
	memset(&sb->slots[slot], 0, sizeof(sb->slots[slot]));
}

void
scoreboard_beat(struct scoreboard_slot *s)
{
	__atomic_store_n(&s->heartbeat_ms, scoreboard_now_ms(), __ATOMIC_RELAXED);
}

uint64_t
scoreboard_silence_ms(const struct scoreboard_slot *s)
{
	uint64_t beat = __atomic_load_n(&s->heartbeat_ms, __ATOMIC_RELAXED), now = scoreboard_now_ms();

	return now > beat ? now - beat : 0;
}
