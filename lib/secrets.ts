import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

/** 256 random bits, URL-safe: mail-link and refresh tokens. */
export function newSecretToken (): string {
  return randomBytes(32).toString('base64url')
}

/** How such tokens are stored: their SHA-256 (they carry full entropy, so no salt or slow hash is needed). */
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * Authenticated encryption (AES-256-GCM) under a key derived from the service secret, for the rare
 * value that must be read back later (a rotated refresh token, for the few seconds of its grace).
 */
export function createSealer (secret: string, purpose: string) {
  const key = Buffer.from(hkdfSync('sha256', secret, '', purpose, 32))
  return {
    seal (plain: string): string {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
    },
    open (sealed: string): string | null {
      try {
        const data = Buffer.from(sealed, 'base64url')
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12))
        decipher.setAuthTag(data.subarray(12, 28))
        return Buffer.concat([decipher.update(data.subarray(28)), decipher.final()]).toString('utf8')
      } catch {
        return null
      }
    }
  }
}

export type Sealer = ReturnType<typeof createSealer>
