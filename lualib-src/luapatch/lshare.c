/*
** skynet-rs extension of Lua 5.4 and 5.5: function prototypes shared by all states of the
** process.
**
** A state that compiles code (the code cache's own state) calls lua_sharefunction on a Lua
** function: its prototype, the prototypes nested in it, and the strings they own (constants,
** source name, upvalue and local names) become shared. A shared object has the age G_SHARED
** and no color bit, and is unlinked from its state's object lists: no collector marks,
** traverses, barriers, sweeps or frees it, and nothing writes to it again, so any thread may
** read it. Shared objects live until the process exits.
**
** lua_clonefunction then creates, in any state, a new closure of such a prototype with fresh
** upvalues, the first one set to the global table as lua_load does.
**
** Short strings stay interned per state; a shared string and a state's own string with the
** same contents are made equal by eqshrstr (lstring.h) and hash alike because every state of
** the process uses the same seed (luaS_processseed).
*/

#define lshare_c
#define LUA_CORE

#include "lprefix.h"

#include "lua.h"
#include "lauxlib.h"

#include "lapi.h"
#include "ldebug.h"
#include "lfunc.h"
#include "lgc.h"
#include "lobject.h"
#include "lstate.h"
#include "lstring.h"
#include "ltable.h"


#if LUA_VERSION_NUM >= 505
#define GENERATIONAL	KGC_GENMINOR
#else
#define GENERATIONAL	KGC_GEN
#endif


static unsigned int process_seed = 0;


/* The seed of every state of the process: the first state's candidate wins. */
unsigned int luaS_processseed (unsigned int candidate) {
  unsigned int expected = 0;
  if (candidate == 0)
    candidate = 1;
  if (__atomic_compare_exchange_n(&process_seed, &expected, candidate, 0,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return candidate;
  return expected;
}


static void markshared (GCObject *o) {
  o->marked = cast_byte((o->marked & ~(WHITEBITS | bitmask(BLACKBIT) | AGEBITS)) | G_SHARED);
}


static void sharestring (TString *ts) {
  if (ts == NULL || isshared(ts))
    return;
  if (ts->tt == LUA_VLNGSTR)
    luaS_hashlongstr(ts);  /* computed now: never written once shared */
  markshared(obj2gco(ts));
}


static void shareproto (Proto *p) {
  int i;
  if (p == NULL || isshared(p))
    return;
  markshared(obj2gco(p));
  sharestring(p->source);
  for (i = 0; i < p->sizek; i++) {
    if (ttisstring(&p->k[i]))
      sharestring(tsvalue(&p->k[i]));
  }
  for (i = 0; i < p->sizeupvalues; i++)
    sharestring(p->upvalues[i].name);
  for (i = 0; i < p->sizelocvars; i++)
    sharestring(p->locvars[i].varname);
  for (i = 0; i < p->sizep; i++)
    shareproto(p->p[i]);
}


/*
** Brings the collector of 'L' to the end of a cycle, in incremental mode: no gray list and
** no sweep in progress, so objects can change color and leave 'allgc'. Answers whether the
** state was in generational mode. Not from a finalizer (the collector is not reentrant).
*/
static int settle (lua_State *L) {
  global_State *g = G(L);
  int gen = (g->gckind != KGC_INC);
  if (g->gcstp & (GCSTPGC | GCSTPCLS))  /* in a finalizer, or closing */
    luaG_runerror(L, "cannot share while the collector runs");
  if (gen)
    luaC_changemode(L, KGC_INC);
#if LUA_VERSION_NUM >= 505
  luaC_runtilstate(L, GCSpause, 1);
#else
  luaC_runtilstate(L, bitmask(GCSpause));
#endif
  return gen;
}


static void unlinkfrom (GCObject **p) {
  while (*p != NULL) {
    GCObject *o = *p;
    if (isshared(o))
      *p = o->next;
    else
      p = &o->next;
  }
}


/*
** Unlinks the shared objects from the lists of objects of 'L' (the fixed objects too: a
** metamethod name or a reserved word may be a constant of shared code), so that not even
** lua_close of 'L' frees them.
*/
static void unlinkshared (lua_State *L, int gen) {
  global_State *g = G(L);
  unlinkfrom(&g->allgc);
  unlinkfrom(&g->fixedgc);
  if (gen)
    luaC_changemode(L, GENERATIONAL);
}


LUA_API void lua_sharefunction (lua_State *L, int index) {
  Proto *p;
  int gen;
  if (lua_type(L, index) != LUA_TFUNCTION || lua_iscfunction(L, index))
    luaG_runerror(L, "only a Lua function can be shared");
  p = ((const LClosure *)lua_topointer(L, index))->p;
  lua_lock(L);
  gen = settle(L);
  shareproto(p);
  unlinkshared(L, gen);
  lua_unlock(L);
}


LUA_API void lua_sharestring (lua_State *L, int index) {
  TString *ts;
  int gen;
  if (lua_type(L, index) != LUA_TSTRING)
    luaG_runerror(L, "only a string can be shared");
  ts = (TString *)lua_topointer(L, index);
  lua_lock(L);
  gen = settle(L);
  sharestring(ts);
  unlinkshared(L, gen);
  lua_unlock(L);
}


/* 'fp' is lua_topointer of a function whose prototype was shared with lua_sharefunction. */
LUA_API void lua_clonefunction (lua_State *L, const void *fp) {
  const LClosure *f = (const LClosure *)fp;
  Proto *p = f->p;
  LClosure *cl;
  lua_lock(L);
  api_check(L, isshared(p), "not a shared function");
  cl = luaF_newLclosure(L, p->sizeupvalues);
  cl->p = p;
  setclLvalue2s(L, L->top.p, cl);  /* anchor it before allocating the upvalues */
  api_incr_top(L);
  luaF_initupvals(L, cl);
  if (cl->nupvalues >= 1) {  /* first upvalue: the global table, as lua_load sets it */
#if LUA_VERSION_NUM >= 505
    TValue gt;
    luaH_getint(hvalue(&G(L)->l_registry), LUA_RIDX_GLOBALS, &gt);
    setobj(L, cl->upvals[0]->v.p, &gt);
    luaC_barrier(L, cl->upvals[0], &gt);
#else
    const TValue *gt = &hvalue(&G(L)->l_registry)->array[LUA_RIDX_GLOBALS - 1];
    setobj(L, cl->upvals[0]->v.p, gt);
    luaC_barrier(L, cl->upvals[0], gt);
#endif
  }
  lua_unlock(L);
}


/* luaL_loadfilex without any cache (the code cache is installed above Lua's loaders). */
LUALIB_API int luaL_loadfilex_ (lua_State *L, const char *filename, const char *mode) {
  return luaL_loadfilex(L, filename, mode);
}
