import { Type } from 'typebox'

export const HealthSchema = Type.Object({
  status: Type.String({ examples: ['ok'] })
}, { $id: 'Health', additionalProperties: false })
