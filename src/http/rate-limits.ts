/**
 * Two per-client-address limits (express-rate-limit, in-memory): one on every /api request,
 * before authentication, and a tighter one that counts only failed authentications, so guessing
 * keys is slow while a client with the right key is not slowed by it. Both answer 429 with the
 * standard RateLimit headers and the usual error body.
 */
import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { AppError } from '../core/errors.js';
import { sendError } from './errors.js';

export interface RateLimitOptions {
  /** Requests per minute; 0 disables. */
  perMinute: number;
  /** Failed authentications per 15 minutes; 0 disables. */
  authFailuresPer15Min: number;
}

/** The limiters to mount, in order; a disabled limit adds no layer at all. */
export function createRateLimits({ perMinute, authFailuresPer15Min }: RateLimitOptions): RequestHandler[] {
  const limits: RequestHandler[] = [];
  if (perMinute > 0) {
    limits.push(
      rateLimit({
        windowMs: 60_000,
        limit: perMinute,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        handler: (_req, res) => sendError(res, new AppError('RATE_LIMITED', { details: 'Too many requests; try again later' })),
      }),
    );
  }
  if (authFailuresPer15Min > 0) {
    limits.push(
      rateLimit({
        windowMs: 15 * 60_000,
        limit: authFailuresPer15Min,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        identifier: 'auth-failures',
        skipSuccessfulRequests: true,
        requestWasSuccessful: (_req, res) => res.statusCode !== 401,
        handler: (_req, res) => sendError(res, new AppError('RATE_LIMITED', { details: 'Too many failed authentications; try again later' })),
      }),
    );
  }
  return limits;
}
